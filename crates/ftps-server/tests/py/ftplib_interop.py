#!/usr/bin/env python3
"""Python ftplib (FTP_TLS) scenarios against the ftps server, driven by
tests/interop_ftplib.rs.

Usage: ftplib_interop.py SCENARIO [--tls 1.2|1.3|any] [--local DIR] [--count N]
Environment: FTP_PORT, FTP_CERT, FTP_USER, FTP_PASSWORD.

Each scenario asserts what it can see from the client side, prints
`KEY=VALUE` lines for the Rust side (which checks the files on the server and
in DIR byte for byte) and exits 0; any failure raises, printing a traceback
and the FTP dialogue, and exits non-zero.

Scenarios:
  stock-refused  stock FTP_TLS + prot_p: data connections do not resume the
                 control connection's TLS session, so STOR/RETR get 522
                 (RFC 4217 §10.2); the control connection stays usable.
  reuse          the well-known session-reuse subclass: COUNT STOR of
                 DIR/up/* then COUNT RETR into DIR/back/ over one control
                 connection; every data connection resumes the session.
  active         reuse subclass in active mode (PORT, RFC 959 §4.1.2).
  abort          ABOR during a large RETR (RFC 959 §4.1.3): 426 then 226,
                 then the session still works.
  rein           REIN over TLS (RFC 959 §4.1.1, RFC 4217 §13): 220, the
                 server clears TLS, the connection is plaintext and logged
                 out; AUTH TLS and login again work.
  mlsd           ftp.mlsd() facts (RFC 3659 §7).
  stou           STOU: `150 FILE: name` (RFC 1123 §4.1.2.9), name printed.
"""

import argparse
import ftplib
import io
import os
import socket
import ssl
import sys


class Recording:
    """Mixin: keep every reply (full text) in self.replies."""

    def getmultiline(self):
        line = super().getmultiline()
        self.replies.append(line)
        return line


class StockFTPS(Recording, ftplib.FTP_TLS):
    """FTP_TLS as shipped: each data connection is a fresh TLS session."""

    def __init__(self, *args, **kwargs):
        self.replies = []
        super().__init__(*args, **kwargs)


class ReuseFTPS(Recording, ftplib.FTP_TLS):
    """The well-known fix: wrap the data connection with the control
    connection's TLS session so that it is resumed (RFC 4217 §10.2)."""

    def __init__(self, *args, **kwargs):
        self.replies = []
        self.data_connections = 0
        self.data_resumed = 0
        super().__init__(*args, **kwargs)

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session
            )
            self.data_connections += 1
            if conn.session_reused:
                self.data_resumed += 1
        return conn, size


def context(tls):
    ctx = ssl.create_default_context(cafile=os.environ["FTP_CERT"])
    if tls == "1.2":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif tls == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def connect(cls, tls):
    ftp = cls(context=context(tls), timeout=30)
    ftp.connect("127.0.0.1", int(os.environ["FTP_PORT"]))
    ftp.auth()
    ftp.login(os.environ["FTP_USER"], os.environ["FTP_PASSWORD"])
    ftp.prot_p()
    expected = {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}.get(tls)
    if expected is not None:
        assert ftp.sock.version() == expected, ftp.sock.version()
    print(f"TLS_VERSION={ftp.sock.version()}")
    return ftp


def check(condition, ftp, message):
    if not condition:
        raise AssertionError(message + "\nreplies:\n" + "\n".join(ftp.replies))


def expect_522(ftp, action):
    """Run a transfer that the server must refuse with 522; return its text.

    ftplib raises error_perm for the 522 when it reads the final reply; the
    data connection may also fail first (the server closes it after the
    handshake), leaving the 522 unread on the control connection."""
    try:
        action()
    except ftplib.error_perm as e:
        text = str(e)
    except (OSError, EOFError) as e:  # ssl.SSLError is an OSError
        print(f"data connection error before the reply: {e!r}", file=sys.stderr)
        try:
            ftp.getresp()
        except ftplib.error_perm as e2:
            text = str(e2)
        else:
            raise AssertionError("transfer not refused")
    else:
        raise AssertionError("transfer not refused\n" + "\n".join(ftp.replies))
    check(text.startswith("522"), ftp, f"expected 522, got {text!r}")
    check("session reuse" in text.lower(), ftp, f"522 does not explain: {text!r}")
    return text


def scenario_stock_refused(args):
    ftp = connect(StockFTPS, args.tls)
    text = expect_522(
        ftp, lambda: ftp.storbinary("STOR refused.bin", io.BytesIO(os.urandom(100_000)))
    )
    print(f"STOR_REPLY={text}")
    check(ftp.voidcmd("NOOP").startswith("200"), ftp, "NOOP after refused STOR")
    text = expect_522(ftp, lambda: ftp.retrbinary("RETR present.bin", lambda b: None))
    print(f"RETR_REPLY={text}")
    check(ftp.voidcmd("NOOP").startswith("200"), ftp, "NOOP after refused RETR")
    # The control connection is fully usable: a command with a reply of
    # substance, and a listing over the control connection.
    check(ftp.sendcmd("SIZE present.bin") == "213 1234", ftp, "SIZE")
    check(ftp.pwd() == "/", ftp, "PWD")
    ftp.quit()


def transfer(ftp, what, action):
    """Run one transfer; if the data connection fails before ftplib reads
    the final reply, read it so that the failure names the server's reply."""
    try:
        return action()
    except (OSError, EOFError) as e:
        try:
            reply = ftp.getresp()
        except ftplib.Error as e2:
            reply = str(e2)
        raise AssertionError(
            f"{what}: data connection failed ({e!r}); server reply: {reply}\n"
            f"data connections so far: {ftp.data_connections}, "
            f"resumed: {ftp.data_resumed}\nreplies:\n" + "\n".join(ftp.replies)
        ) from e


def scenario_reuse(args, active=False):
    ftp = connect(ReuseFTPS, args.tls)
    if active:
        ftp.set_pasv(False)
    up = os.path.join(args.local, "up")
    back = os.path.join(args.local, "back")
    os.makedirs(back, exist_ok=True)
    names = sorted(os.listdir(up))
    check(len(names) == args.count, ftp, f"{len(names)} files in {up}")
    for name in names:
        with open(os.path.join(up, name), "rb") as f:
            resp = transfer(ftp, f"STOR {name}", lambda: ftp.storbinary(f"STOR {name}", f))
        check(resp.startswith("226"), ftp, f"STOR {name}: {resp}")
    listed = sorted(transfer(ftp, "NLST", ftp.nlst))
    for name in names:
        check(name in listed, ftp, f"{name} not in NLST {listed}")
    for name in names:
        remote = "d" + name[1:]  # u07.bin -> d07.bin, placed by the Rust side
        with open(os.path.join(back, remote), "wb") as f:
            resp = transfer(
                ftp, f"RETR {remote}", lambda: ftp.retrbinary(f"RETR {remote}", f.write)
            )
        check(resp.startswith("226"), ftp, f"RETR {remote}: {resp}")
    expected = 2 * args.count + 1  # STORs, RETRs and the NLST
    check(ftp.data_connections == expected, ftp, f"{ftp.data_connections} data connections")
    check(
        ftp.data_resumed == expected,
        ftp,
        f"only {ftp.data_resumed} of {expected} data connections resumed the session",
    )
    if active:
        check(
            not any(r.startswith(("227", "229")) for r in ftp.replies),
            ftp,
            "passive mode was used",
        )
    print(f"DATA_CONNECTIONS={ftp.data_connections}")
    print(f"DATA_RESUMED={ftp.data_resumed}")
    ftp.quit()


def scenario_abort(args):
    ftp = connect(ReuseFTPS, args.tls)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    received = 0
    while received < 1_000_000:
        chunk = conn.recv(65536)
        check(chunk, ftp, "data connection closed early")
        received += len(chunk)
    # Stop reading: the server is now blocked writing. ABOR must still be
    # read and answered: 426 for the aborted transfer, then 226.
    first = ftp.abort()
    print(f"ABOR_REPLY1={first}")
    check(first.startswith("426"), ftp, f"first reply to ABOR: {first}")
    second = ftp.getresp()
    print(f"ABOR_REPLY2={second}")
    check(second.startswith("226"), ftp, f"second reply to ABOR: {second}")
    conn.close()
    # The session still works: a command and a complete transfer.
    check(ftp.voidcmd("NOOP").startswith("200"), ftp, "NOOP after ABOR")
    data = bytearray()
    resp = ftp.retrbinary("RETR small.bin", data.extend)
    check(resp.startswith("226"), ftp, f"RETR after ABOR: {resp}")
    with open(os.path.join(args.local, "small.bin"), "wb") as f:
        f.write(data)
    print(f"RECEIVED_BEFORE_ABOR={received}")
    ftp.quit()


def scenario_rein(args):
    ftp = connect(ReuseFTPS, args.tls)
    resp = ftp.sendcmd("REIN")
    print(f"REIN_REPLY={resp}")
    check(resp.startswith("220"), ftp, f"REIN: {resp}")
    # After the protected 220 the server sends close_notify (RFC 4217 §13:
    # REIN clears the control connection as CCC would); answer it and go on
    # with the plain socket.
    unwrapped = ftp.sock.unwrap()
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM, fileno=unwrapped.detach())
    plain.settimeout(30)
    ftp.sock = plain
    ftp.file = plain.makefile("r", encoding=ftp.encoding)
    # Plaintext now, and logged out: the secure default refuses USER before
    # AUTH TLS (RFC 4217 §10.1) with 530.
    try:
        ftp.sendcmd("USER " + os.environ["FTP_USER"])
    except ftplib.error_perm as e:
        print(f"PLAIN_USER_REPLY={e}")
        check(str(e).startswith("530"), ftp, f"USER after REIN: {e}")
    else:
        raise AssertionError("USER accepted in plaintext after REIN")
    # The server understands plaintext commands.
    check(ftp.voidcmd("NOOP").startswith("200"), ftp, "plaintext NOOP after REIN")
    # And the client can secure the connection and log in again.
    ftp._prot_p = False
    ftp.auth()
    ftp.login(os.environ["FTP_USER"], os.environ["FTP_PASSWORD"])
    ftp.prot_p()
    data = bytearray()
    resp = ftp.retrbinary("RETR present.bin", data.extend)
    check(resp.startswith("226") and len(data) == 1234, ftp, f"RETR after REIN: {resp}")
    ftp.quit()


def scenario_mlsd(args):
    ftp = connect(ReuseFTPS, args.tls)
    entries = dict(ftp.mlsd("/", facts=["type", "size", "modify", "perm", "unique"]))
    for name, facts in sorted(entries.items()):
        print(f"MLSD {name} " + ";".join(f"{k}={v}" for k, v in sorted(facts.items())))
    check("a.bin" in entries and "sub" in entries, ftp, f"names: {sorted(entries)}")
    a = entries["a.bin"]
    check(a.get("type") == "file", ftp, f"a.bin type: {a}")
    check(a.get("size") == "4321", ftp, f"a.bin size: {a}")
    modify = a.get("modify", "")
    check(len(modify) >= 14 and modify[:14].isdigit(), ftp, f"a.bin modify: {a}")
    check("r" in a.get("perm", ""), ftp, f"a.bin perm: {a}")
    check(a.get("unique"), ftp, f"a.bin unique: {a}")
    sub = entries["sub"]
    check(sub.get("type") == "dir", ftp, f"sub type: {sub}")
    check("l" in sub.get("perm", "") or "e" in sub.get("perm", ""), ftp, f"sub perm: {sub}")
    check("size" not in sub or sub["size"].isdigit(), ftp, f"sub size: {sub}")
    # RFC 3659 §7.5.1: cdir/pdir entries are allowed; no other types here.
    for name, facts in entries.items():
        check(
            facts.get("type") in ("file", "dir", "cdir", "pdir"),
            ftp,
            f"{name} type: {facts}",
        )
    # MLSD of a subdirectory with the default facts.
    inner = dict(ftp.mlsd("sub"))
    check(inner.get("inner.txt", {}).get("size") == "5", ftp, f"sub listing: {inner}")
    # MLST (control connection) agrees with MLSD.
    resp = ftp.sendcmd("MLST a.bin")
    check(resp.startswith("250") and "size=4321" in resp.lower(), ftp, f"MLST: {resp}")
    ftp.quit()


def scenario_stou(args):
    ftp = connect(ReuseFTPS, args.tls)
    with open(os.path.join(args.local, "stou.bin"), "rb") as f:
        resp = ftp.storbinary("STOU", f)
    check(resp.startswith("226"), ftp, f"STOU final reply: {resp}")
    started = [r for r in ftp.replies if r.startswith("150")]
    check(len(started) == 1, ftp, "one 150 reply")
    text = started[0]
    check(text.startswith("150 FILE: "), ftp, f"STOU 150 reply: {text}")
    name = text[len("150 FILE: "):].strip()
    check(name and "/" not in name.strip("/"), ftp, f"STOU name: {name!r}")
    print(f"STOU_NAME={name}")
    # A second STOU never picks the same name.
    with open(os.path.join(args.local, "stou.bin"), "rb") as f:
        ftp.storbinary("STOU", f)
    second = [r for r in ftp.replies if r.startswith("150")][1][len("150 FILE: "):].strip()
    check(second != name, ftp, f"STOU reused the name {name}")
    print(f"STOU_NAME2={second}")
    ftp.quit()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--tls", default="any", choices=["1.2", "1.3", "any"])
    parser.add_argument("--local", default=".")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    socket.setdefaulttimeout(30)
    {
        "stock-refused": scenario_stock_refused,
        "reuse": scenario_reuse,
        "active": lambda a: scenario_reuse(a, active=True),
        "abort": scenario_abort,
        "rein": scenario_rein,
        "mlsd": scenario_mlsd,
        "stou": scenario_stou,
    }[args.scenario](args)
    print("OK")


if __name__ == "__main__":
    main()
