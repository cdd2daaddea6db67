#!/bin/sh
# Runs every test of the workspace: unit tests, integration tests against the
# real server, and interop tests with real clients and servers; then the
# protocol, hostile-input and fault tests again on the S3 back-end. Installs
# them (scripts/install-test-peers.sh, scripts/install-test-servers.sh) when
# they are missing and this user can (root or sudo). With CI=true a missing
# peer fails its tests instead of skipping them.
set -eu
cd "$(dirname "$0")/.."

# The clients, libraries and services the tests run against: installed by
# their own script when this user can (root or sudo); otherwise their tests
# are skipped with a note (or fail under CI=true).
sh scripts/install-test-peers.sh

# The third-party FTPS servers the client is tested against (vsftpd, ProFTPD,
# Pure-FTPd): installed and configured by their own script, as root.
if [ "$(id -u)" = 0 ]; then
    sh scripts/install-test-servers.sh
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo sh scripts/install-test-servers.sh
else
    echo "note: not root: the client's tests against vsftpd, ProFTPD and Pure-FTPd are skipped" >&2
fi

# The flood test of hostile.rs opens 10,000 connections at once from a child
# process to the server in the test process: each side needs more than 10,000
# file descriptors. Raise the soft limit to the hard one, and as root the
# hard limit to 65536 where it is lower (without CAP_SYS_RESOURCE, e.g. in
# some containers, that fails and the test reports the limit).
hard=$(ulimit -Hn)
if [ "$(id -u)" = 0 ] && [ "$hard" != unlimited ] && [ "$hard" -lt 65536 ]; then
    ulimit -Hn 65536 2>/dev/null || true
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || ulimit -Sn 65536 2>/dev/null || true
echo "open files limit: $(ulimit -Sn) (hard $(ulimit -Hn))" >&2

log=$(mktemp)
status_file=$(mktemp)
# (set -e would end the group at a failing cargo before its status is saved.)
# Then the protocol, hostile-input and fault tests once more with the test
# account's files in a private SeaweedFS over S3 (FTPS_TEST_BACKEND=s3; see
# crates/ftps-testing/src/store.rs): the same test bodies on the other back-end.
S3_PASS="--test protocol_data --test hostile --test faults"
{
    code=0
    cargo test --workspace "$@" 2>&1 || code=$?
    echo "== the same protocol, hostile-input and fault tests on the S3 back-end"
    FTPS_TEST_BACKEND=s3 cargo test -p ftps-server $S3_PASS "$@" 2>&1 || code=$?
    echo "$code" > "$status_file"
} | tee "$log"
status=$(cat "$status_file")
# One closing line for the whole run: cargo prints a summary per test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i; if ($(i+1) ~ /^ignored;?$/) s += $i } }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log" "$status_file"
exit "$status"
