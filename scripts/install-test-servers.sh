#!/bin/sh
# Installs the third-party FTPS servers that the interop tests of
# crates/ftps-client and crates/ftps start (with the harness
# ftps_testing::servers, crates/ftps-testing/src/servers/mod.rs):
#
#   vsftpd     apt-get install vsftpd            -> /usr/sbin/vsftpd
#   ProFTPD    proftpd-core + proftpd-mod-crypto (mod_tls) unpacked with
#              dpkg -x into $PREFIX/proftpd      -> $PREFIX/proftpd/usr/sbin/proftpd
#   Pure-FTPd  pure-ftpd unpacked with dpkg -x into $PREFIX/pure-ftpd
#                                                -> $PREFIX/pure-ftpd/usr/sbin/pure-ftpd
#
# The three Debian packages conflict with each other (each "provides"
# ftp-server), so only vsftpd is installed the normal way; the other two are
# only unpacked, and the shared libraries they link against are installed
# with apt-get. Nothing is started and no service is enabled.
#
# It also creates the system user the servers log the tests in as
# ($TEST_USER: no login shell, an empty home under $PREFIX), gives it a
# random password kept in $PREFIX/ftpstest.password (mode 0600), and writes
# the PAM service /etc/pam.d/ftps-test-vsftpd that the harness's vsftpd uses
# (it admits only that user).
#
# Debian 12 (bookworm), run as root (or with sudo available). Idempotent:
# a second run only checks. Exits non-zero with a message when anything is
# missing afterwards.
#
# Usage: sh scripts/install-test-servers.sh
# Env:   FTPS_TEST_SERVERS_DIR  install prefix (default /opt/ftps-test-servers;
#                               the harness reads the same variable)
set -eu

PREFIX="${FTPS_TEST_SERVERS_DIR:-/opt/ftps-test-servers}"
TEST_USER=ftpstest
PAM_SERVICE=ftps-test-vsftpd
PASSWORD_FILE="$PREFIX/$TEST_USER.password"

die() {
    echo "install-test-servers: error: $*" >&2
    exit 1
}
say() {
    echo "install-test-servers: $*" >&2
}

# --- privileges -----------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        say "not root: re-running with sudo"
        exec sudo env FTPS_TEST_SERVERS_DIR="$PREFIX" sh "$0" "$@"
    fi
    die "must run as root (or with sudo): it installs packages and creates the user $TEST_USER"
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script supports Debian 12 (bookworm) only"
command -v dpkg >/dev/null 2>&1 || die "dpkg not found"

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=""
apt_update_once() {
    if [ -z "$APT_UPDATED" ]; then
        say "apt-get update"
        apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
}

# --- vsftpd and the tools the harness calls ------------------------------
# vsftpd's postinst would start the system service (port 21, all
# interfaces) through invoke-rc.d; a temporary policy-rc.d forbids that
# unless the machine already has one (Docker images do).
need=""
[ -x /usr/sbin/vsftpd ] || need="$need vsftpd"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v kill >/dev/null 2>&1 || need="$need procps"
if [ -n "$need" ]; then
    apt_update_once
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, from install-test-servers.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    say "apt-get install$need"
    # shellcheck disable=SC2086
    if ! apt-get install -y -qq $need >/dev/null; then
        [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
        die "apt-get install$need failed"
    fi
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

# --- ProFTPD and Pure-FTPd, unpacked -------------------------------------
# unpack NAME PKG... : downloads the packages (the candidate versions) and
# unpacks them all into $PREFIX/NAME, replacing an older unpack. A stamp
# file holds the versions so that a re-run with the same versions is a
# no-op. The shared libraries the packages depend on (their "Depends: lib*")
# are installed with apt-get.
unpack() {
    name="$1"
    shift
    dest="$PREFIX/$name"
    stamp="$dest/.installed-versions"
    want=""
    for pkg in "$@"; do
        v="$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
        if [ -z "$v" ] || [ "$v" = "(none)" ]; then
            apt_update_once
            v="$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
        fi
        [ -n "$v" ] && [ "$v" != "(none)" ] || die "package $pkg not found in the apt sources"
        want="${want:+$want }$pkg=$v"
    done
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    apt_update_once
    libs="$(apt-cache depends "$@" | awk '$1 == "Depends:" && $2 ~ /^lib/ { print $2 }' | sort -u)"
    if [ -n "$libs" ]; then
        say "apt-get install (libraries for $name):" $libs
        # shellcheck disable=SC2086
        apt-get install -y -qq $libs >/dev/null || die "apt-get install of the libraries for $name failed"
    fi
    mkdir -p "$PREFIX"
    # On the same file system as $dest, so that the final rename is atomic.
    work="$(mktemp -d "$PREFIX/.unpack.XXXXXX")"
    # apt-get download runs as _apt when it can; let it write there.
    chmod 777 "$work"
    (cd "$work" && apt-get download -qq "$@") || { rm -rf "$work"; die "apt-get download $* failed"; }
    mkdir -p "$work/root"
    for deb in "$work"/*.deb; do
        dpkg -x "$deb" "$work/root" || { rm -rf "$work"; die "dpkg -x $deb failed"; }
    done
    echo "$want" >"$work/root/.installed-versions"
    rm -rf "$dest.old"
    [ ! -e "$dest" ] || mv "$dest" "$dest.old"
    mv "$work/root" "$dest"
    rm -rf "$dest.old" "$work"
    say "unpacked $want into $dest"
}

unpack proftpd proftpd-core proftpd-mod-crypto
unpack pure-ftpd pure-ftpd

# Every unpacked binary and module must find its shared libraries.
missing_libs=""
for f in "$PREFIX/proftpd/usr/sbin/proftpd" "$PREFIX/proftpd/usr/lib/proftpd/mod_tls.so" \
    "$PREFIX/pure-ftpd/usr/sbin/pure-ftpd" "$PREFIX/pure-ftpd/usr/bin/pure-pw" /usr/sbin/vsftpd; do
    [ -e "$f" ] || die "$f is missing after the install"
    nf="$(ldd "$f" 2>/dev/null | grep 'not found' || true)"
    [ -z "$nf" ] || missing_libs="$missing_libs
$f:
$nf"
done
[ -z "$missing_libs" ] || die "unresolved shared libraries:$missing_libs"

# --- the test user --------------------------------------------------------
# A system user without a shell. The harness gives each server instance its
# own root directory owned by this user (vsftpd's local_root, the home field
# of ProFTPD's and Pure-FTPd's own user files); vsftpd still changes into
# the system home first and fails the login when it does not exist, so the
# user has an empty one under $PREFIX.
TEST_HOME="$PREFIX/$TEST_USER-home"
mkdir -p "$PREFIX"
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
    say "creating system user $TEST_USER"
    useradd --system --user-group --no-create-home --home-dir "$TEST_HOME" \
        --shell /usr/sbin/nologin --comment "FTPS interop test user" "$TEST_USER" ||
        die "useradd $TEST_USER failed"
fi
if [ "$(getent passwd "$TEST_USER" | cut -d: -f6)" != "$TEST_HOME" ]; then
    usermod --home "$TEST_HOME" "$TEST_USER" || die "usermod --home $TEST_HOME $TEST_USER failed"
fi
mkdir -p "$TEST_HOME"
chown "$TEST_USER:" "$TEST_HOME"
chmod 755 "$TEST_HOME"
if [ ! -s "$PASSWORD_FILE" ]; then
    # Random, so that the machine has no account with a published password.
    (umask 077 && openssl rand -hex 12 >"$PASSWORD_FILE") || die "cannot write $PASSWORD_FILE"
fi
chmod 600 "$PASSWORD_FILE"
# Set it every time: cheap, and repairs a password changed by hand.
printf '%s:%s\n' "$TEST_USER" "$(cat "$PASSWORD_FILE")" | chpasswd || die "chpasswd for $TEST_USER failed"

# vsftpd authenticates local users through PAM. This service admits only the
# test user (pam_succeed_if), checks its password with pam_unix, and needs
# no valid shell (the user has none) and no /etc/ftpusers entry.
cat >"/etc/pam.d/$PAM_SERVICE.new" <<EOF
# Written by install-test-servers.sh (FTPS interop tests): used only by the
# vsftpd instances that the test harness starts.
auth     requisite  pam_succeed_if.so quiet user = $TEST_USER
auth     required   pam_unix.so
account  required   pam_permit.so
session  required   pam_permit.so
EOF
mv "/etc/pam.d/$PAM_SERVICE.new" "/etc/pam.d/$PAM_SERVICE"

say "ok: vsftpd $(dpkg-query -W -f '${Version}' vsftpd 2>/dev/null)," \
    "proftpd: $(cat "$PREFIX/proftpd/.installed-versions")," \
    "pure-ftpd: $(cat "$PREFIX/pure-ftpd/.installed-versions"), user $TEST_USER"
