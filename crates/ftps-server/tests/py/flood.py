#!/usr/bin/env python3
"""The flooding client of hostile.rs (connection_flood_over_max_sessions_gets_421).

Opens COUNT TCP connections to an FTP server's explicit port, sends NOOP on
each at once (see below), reads each connection's first line and keeps every
connection open. It runs as a process of its own so that its sockets do not
count against the RLIMIT_NOFILE of the test process, which runs the server.

    flood.py HOST PORT COUNT [--parallel N] [--greeting-timeout SECONDS]

It raises its soft RLIMIT_NOFILE to the hard limit first. When even the hard
limit leaves too few descriptors for COUNT connections, it prints

    {"error": "...", "nofile": [SOFT, HARD], "need": NEED}

and exits with status 2. Otherwise it prints one JSON object on stdout once
every connection has its answer:

    {"admitted": A, "refused": R, "other": O, "other_samples": [...],
     "open": N, "seconds": S, "nofile": [SOFT, HARD]}

("admitted": a 220 greeting, "refused": "421 Too many connections", "other":
anything else, samples of which are listed). It then holds the connections
until a line or end of file arrives on standard input, closes them all,
prints {"released": N} and exits with status 0.

Why NOOP right away: under a burst of connects the kernel may answer with
SYN cookies, and a connection whose last handshake ACK was lost comes to
life only with the client's first data. FTP servers speak first, so a silent
client could wait forever for a greeting the server never knew to send.
"""

import argparse
import asyncio
import json
import resource
import sys
import time

# Descriptors the interpreter and asyncio need besides the connections
# (stdio, the epoll instance, its self-pipe, the executor's threads).
SPARE_FDS = 64
# Longest wait for one connect to complete, in seconds.
CONNECT_TIMEOUT_SECS = 30


def raise_nofile(need):
    """Soft RLIMIT_NOFILE up to the hard limit; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


async def one(host, port, gate, greeting_timeout, held):
    """Connect, say NOOP, read the first line: (kind, detail)."""
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_TIMEOUT_SECS
            )
        except asyncio.TimeoutError:
            return "other", "connect timed out"
        except OSError as e:
            return "other", "connect: %s" % e
        held.append(writer)
        try:
            writer.write(b"NOOP\r\n")
            await writer.drain()
        except OSError:
            # A refused connection may already be closed; its 421 is read below.
            pass
        try:
            line = await asyncio.wait_for(reader.readline(), greeting_timeout)
        except asyncio.TimeoutError:
            return "other", "no first line within %ss" % greeting_timeout
        except OSError as e:
            return "other", "read: %s" % e
    if line.startswith(b"220"):
        return "admitted", None
    if line.startswith(b"421 Too many connections"):
        return "refused", None
    return "other", "first line %r" % line[:80]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def flood(args, nofile):
    held = []
    gate = asyncio.Semaphore(args.parallel)
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            one(args.host, args.port, gate, args.greeting_timeout, held)
            for _ in range(args.count)
        )
    )
    seconds = time.monotonic() - started
    counts = {"admitted": 0, "refused": 0, "other": 0}
    samples = []
    for kind, detail in results:
        counts[kind] += 1
        if detail is not None and len(samples) < 10:
            samples.append(detail)
    emit(
        dict(
            counts,
            other_samples=samples,
            open=len(held),
            seconds=round(seconds, 3),
            nofile=list(nofile),
        )
    )
    # Hold everything until the test says so (a line, or its end of stdin).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for writer in held:
        writer.close()
    for writer in held:
        try:
            await writer.wait_closed()
        except OSError:
            pass
    emit({"released": len(held)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--parallel", type=int, default=250)
    parser.add_argument("--greeting-timeout", type=float, default=30.0)
    args = parser.parse_args()
    need = args.count + SPARE_FDS
    nofile = raise_nofile(need)
    if nofile[0] < need:
        emit(
            {
                "error": "RLIMIT_NOFILE of the flooding process is %d (hard limit %d): "
                "%d connections need %d descriptors"
                % (nofile[0], nofile[1], args.count, need),
                "nofile": list(nofile),
                "need": need,
            }
        )
        return 2
    asyncio.run(flood(args, nofile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
