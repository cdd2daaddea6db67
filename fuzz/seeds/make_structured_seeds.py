#!/usr/bin/env python3
"""Writes the seeds of the `session`, `client_login` and `client_data` targets.

Those targets read their input with `arbitrary` 1.5 (derive), so a seed is
the byte encoding of an `Input` value: integers little-endian, bool and
Option tags one byte, enum variants a u32 `t` with `(t * count) >> 32 ==
index`, and Vec elements each preceded by a 1 byte and ended by a 0 byte.
The variant lists below must follow the enums in fuzz_targets/*.rs; if those
change, update this file and run it again (from any directory). A seed that
no longer decodes as meant is still a valid input, just a less useful one.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v): return bytes([v & 0xFF])
def boolean(v): return b"\x01" if v else b"\x00"
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def i64(v): return struct.pack("<q", v)
def vec(items): return b"".join(b"\x01" + i for i in items) + b"\x00"
def byts(data): return vec([u8(b) for b in data])
def option(v): return b"\x00" if v is None else b"\x01" + v


def variant(names, name, *fields):
    idx, count = names.index(name), len(names)
    tag = (idx * 2**32 + count - 1) // count
    assert (tag * count) >> 32 == idx
    return struct.pack("<I", tag) + b"".join(fields)


# ---- session -------------------------------------------------------------
IP = ["Loopback4", "Loopback6", "Mapped4", "Other4"]
VERB = ("User Pass Acct Quit Rein Noop Syst Feat Opts Help Stat Site Cwd Cdup Pwd Mkd "
        "Rmd Dele Rnfr Rnto Size Mdtm Type Stru Mode Port Pasv Eprt Epsv Rest Retr Stor "
        "Stou Appe Allo List Nlst Mlsd Mlst Abor Auth Pbsz Prot Ccc").split()
ARG = ["None", "Canned", "Bytes"]
FSERR = ("NotFound PermissionDenied AlreadyExists NotADirectory IsADirectory "
         "DirectoryNotEmpty NoSpace InvalidName OffsetBeyondEnd Unsupported Other").split()
FS = ["Done", "Metadata", "Entries", "Failed"]
OUTCOME = ("Complete OpenFailed DataConnectionFailed TlsFailed SessionReuseRequired "
           "Aborted ConnectionLost StorageFailed").split()
EVENT = ("Line Cmd TlsEstablished TlsFailed AuthResult FsResult PassiveOpened "
         "TransferStarted TransferDone Progress SetNow LineTooLong Input Elapse Timeout "
         "TimeoutAtDeadline Shutdown").split()


def policy(tls=True, prot_p=True, reuse=True, ccc=False):
    return boolean(tls) + boolean(prot_p) + boolean(reuse) + boolean(ccc)


def config(implicit=False, pol=None, anonymous=None, peer="Loopback4", local="Loopback4",
           failures=3, login_secs=60, idle_secs=600):
    return (boolean(implicit) + (pol or policy()) + option(None if anonymous is None else u8(anonymous))
            + variant(IP, peer) + variant(IP, local) + u8(failures) + u16(login_secs)
            + u16(idle_secs))


def cmd(verb, arg=None):
    if arg is None:
        a = variant(ARG, "None")
    else:
        a = variant(ARG, "Bytes", byts(arg.encode() if isinstance(arg, str) else arg))
    return variant(EVENT, "Cmd", variant(VERB, verb), a)


def ev(name, *fields): return variant(EVENT, name, *fields)
def grant(write=True, anonymous=False, pol=None):
    return ev("AuthResult", option(boolean(write) + boolean(anonymous) + (pol or policy())))
def entry(name, is_dir=False, size=0, modified=None, mode=None):
    return (byts(name.encode()) + boolean(is_dir) + u64(size)
            + option(None if modified is None else i64(modified))
            + option(None if mode is None else struct.pack("<I", mode)))
def fs(name, *fields): return ev("FsResult", variant(FS, name, *fields))
def fserr(name): return variant(FSERR, name)
def passive(port, ip="Loopback4"): return ev("PassiveOpened", option(variant(IP, ip) + u16(port)))
def started(size=None, unique=None):
    return ev("TransferStarted", option(None if unique is None else byts(unique.encode())),
              option(None if size is None else u64(size)))
def done(name, *fields): return ev("TransferDone", variant(OUTCOME, name, *fields))


def session(cfg, events): return cfg + vec(events)


relaxed = policy(tls=False, prot_p=False, reuse=False, ccc=True)
SESSION = {
    "tls_login_retr": session(config(), [
        cmd("Auth", "TLS"), ev("TlsEstablished"), cmd("User", "alice"), cmd("Pass", "pw"),
        grant(), cmd("Pbsz", "0"), cmd("Prot", "P"), cmd("Type", "I"), cmd("Pasv"),
        passive(2000), cmd("Rest", "100"), cmd("Retr", "a.txt"), started(size=12),
        ev("Progress", u64(5)), cmd("Stat"), cmd("Noop"), cmd("Quit"),
        done("Complete", u64(12)),
    ]),
    "plain_file_commands": session(config(pol=relaxed), [
        cmd("User", "bob"), cmd("Pass", "pw"), grant(pol=relaxed),
        cmd("Cwd", "sub"), fs("Metadata", entry("sub", is_dir=True)), cmd("Pwd"),
        cmd("Mkd", "new dir"), fs("Done"),
        cmd("Rnfr", "a"), fs("Metadata", entry("a", size=3)), cmd("Rnto", "b"), fs("Done"),
        ev("SetNow", i64(1763737800)),
        cmd("Stat", "/"), fs("Metadata", entry("", is_dir=True)),
        fs("Entries", vec([entry("a", size=3, modified=1763737000, mode=0o644),
                           entry("d", is_dir=True, modified=1500000000, mode=0o755)])),
        cmd("Mlst", "a"), fs("Metadata", entry("a", size=3, modified=1763737000)),
        cmd("Type", "I"), cmd("Size", "a"), fs("Metadata", entry("a", size=3)),
        cmd("Mdtm", "a"), fs("Metadata", entry("a", modified=1763737000)),
        cmd("Dele", "zz"), fs("Failed", fserr("NotFound")),
        cmd("Rmd", "d"), fs("Failed", fserr("DirectoryNotEmpty")),
        cmd("Epsv"), passive(2001), cmd("Stor", "up"), started(), cmd("Abor"),
        done("Aborted"),
        cmd("Eprt", "|1|127.0.0.1|2000|"), cmd("List"), done("DataConnectionFailed"),
        cmd("Port", "127,0,0,1,7,209"), cmd("Appe", "up"), done("OpenFailed", fserr("NoSpace")),
        cmd("Pasv"), passive(2002), cmd("Stou"), started(unique="up.1"), done("Complete", u64(0)),
        cmd("Rein"), ev("Input"), ev("Elapse", u32(30_000)), ev("Timeout"),
        ev("TimeoutAtDeadline"),
    ]),
    "implicit_anonymous": session(config(implicit=True, anonymous=1), [
        cmd("User", "anonymous"), cmd("Pass", "me@example.com"),
        grant(write=False, anonymous=True),
        cmd("Epsv", "ALL"), cmd("Pasv"), cmd("Epsv", "1"), passive(2003), cmd("Mlsd", "/"),
        started(), done("ConnectionLost"), cmd("Opts", "MLST type;size;"), cmd("Feat"),
        cmd("Site", "HELP"), cmd("Help", "RETR"), cmd("Ccc"), cmd("Stor", "x"),
        ev("Input"), ev("Elapse", u32(599_000)), ev("Timeout"), ev("TimeoutAtDeadline"),
    ]),
    "out_of_order": session(config(pol=relaxed, failures=2, peer="Mapped4", local="Loopback6"), [
        fs("Done"), done("Complete", u64(1)), passive(1), ev("TlsEstablished"),
        cmd("User", "x"), cmd("Pass", "y"), cmd("Noop"), grant(pol=relaxed), grant(),
        cmd("Pasv"), cmd("Epsv"), cmd("Cwd", "q"), passive(3000, "Loopback6"),
        fs("Entries", vec([])), cmd("User", "x"), cmd("Pass", "z"), ev("AuthResult", option(None)),
        cmd("User", "x"), cmd("Pass", "z"), ev("AuthResult", option(None)),
    ]),
    "auth_ssl_ccc": session(config(pol=relaxed), [
        cmd("Auth", "SSL"), cmd("Noop"), ev("TlsEstablished"), cmd("Auth", "TLS"),
        cmd("User", "carol"), cmd("Pass", "pw"), grant(pol=relaxed), cmd("Prot", "C"),
        cmd("Ccc"), cmd("Pbsz", "0"), cmd("Prot", "P"), ev("LineTooLong"), ev("Line", byts(b"\xff\xfeNOOP\r\n")),
        ev("Shutdown"),
    ]),
    "tls_failed": session(config(), [cmd("Auth", "TLS"), ev("TlsFailed", boolean(True))]),
}

# ---- client_login --------------------------------------------------------
CEVENT = ["Reply", "TlsEstablished", "Poll"]


def copts(security=0, user="u", password="p", account=None, before=(), after=(),
          prot_timing=1, private=True, ccc=False, fallback=True):
    return (u8(security) + byts(user.encode()) + byts(password.encode())
            + option(None if account is None else byts(account.encode()))
            + vec([byts(c.encode()) for c in before]) + vec([byts(c.encode()) for c in after])
            + u8(prot_timing) + boolean(private) + boolean(ccc) + boolean(fallback))


def steps(*items):
    out = []
    for item in items:
        if item == "P":
            out.append(variant(CEVENT, "Poll"))
        elif item == "T":
            out.append(variant(CEVENT, "TlsEstablished"))
        else:
            out.append(variant(CEVENT, "Reply", u16(item)))
    return vec(out)


def login(opts, greetings, events): return opts + vec([u16(g) for g in greetings]) + events


CLIENT = {
    "default_explicit": login(copts(), [220], steps(
        "P", 234, "P", "T", "P", 331, "P", 230, "P", 200, "P", 200, "P", "P")),
    "fallback_ssl_acct_ccc": login(
        copts(account="acct", before=["SITE PREP"], after=["SITE AFTER"], ccc=True,
              prot_timing=0), [120, 220],
        steps("P", 200, "P", 500, "P", 234, "P", "T", "P", 200, "P", 200, "P", 331, "P", 332,
              "P", 230, "P", 200, "P", 200, "P", "P", "P")),
    "implicit_manual": login(copts(security=1, prot_timing=2, private=False), [220],
                             steps("P", 331, "P", 230, "P", "P")),
    "no_tls_refused": login(copts(security=2), [220], steps("P", 530, "P", 999, "P")),
}


# ---- client_data ---------------------------------------------------------
DEVENT = ["Connected", "Reply", "TlsEstablished", "Elapse", "Poll"]


def devents(*items):
    out = []
    for item in items:
        if item == "C":
            out.append(variant(DEVENT, "Connected"))
        elif item == "T":
            out.append(variant(DEVENT, "TlsEstablished"))
        elif isinstance(item, tuple):
            out.append(variant(DEVENT, "Elapse", u16(item[0])))
        else:
            out.append(variant(DEVENT, "Reply", u16(item)))
    return vec(out)


def opening(protected, order, reply_ms, events):
    return boolean(protected) + u8(order) + u32(reply_ms) + events


DATA = {
    "rfc_order": opening(True, 0, 10, devents("C", 150, "T")),
    "waits_for_handshake": opening(True, 0, 10, devents("C", (300,), "T", 150)),
    "learned_handshake_first_refused": opening(True, 2, 10, devents("C", 550, "T")),
    "active_clear": opening(False, 1, 40, devents(150, "C")),
}


def write(target, seeds):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("session", SESSION)
write("client_login", CLIENT)
write("client_data", DATA)
