#!/usr/bin/env python3
"""Second client for servers_smoke.rs, where curl 7.88 cannot help.

curl 7.88.1 (Debian 12) fails every active-mode transfer by itself
("sa_addr inet_ntop() failed with errno 97", curl issue #10622, fixed in
curl 8.0), and always resumes TLS sessions. Python's ftplib does active
mode; this script adds TLS session resumption on data connections (which
vsftpd and ProFTPD require) or leaves it out on purpose.

It also captures listings byte for byte: curl 7.88 writes ASCII-mode
downloads (LIST, MLSD) with CRLF turned into LF.

Usage: ftplib_client.py MODE PORT CAFILE USER [COMMAND]
       (password in $FTPS_PASSWORD)
  active    3 x (LIST, STOR 100 kB, RETR and compare) in active mode,
            resuming the control connection's TLS session; exit 0 if all ok
  no-reuse  one passive LIST without resuming the TLS session: prints
            "accepted" (exit 0) or "refused: REPLY" (exit 3)
  raw       TYPE A, then COMMAND (e.g. LIST, MLSD) in passive mode: writes
            the data connection's bytes, unchanged, to stdout (and nothing
            else); exit 2 if the server refuses COMMAND
Prints the negotiated TLS version (not in raw mode). Exit 1 on any other
failure.
"""
import ftplib
import io
import os
import ssl
import sys


class ResumingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose protected data connections resume the control
    connection's TLS session (ftplib does not by itself)."""

    resume = True

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = self.sock.session if self.resume else None
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=session
            )
        return conn, size


def main():
    mode, port, cafile, user = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    password = os.environ["FTPS_PASSWORD"]
    ctx = ssl.create_default_context(cafile=cafile)
    ftp = ResumingFTP_TLS(context=ctx, timeout=10)
    ftp.connect("127.0.0.1", port)
    ftp.login(user, password)
    ftp.prot_p()
    if mode == "raw":
        ftp.voidcmd("TYPE A")
        try:
            conn = ftp.transfercmd(sys.argv[5])
        except ftplib.error_perm as e:
            print("refused:", str(e).strip(), file=sys.stderr)
            return 2
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        conn.close()
        ftp.voidresp()
        ftp.quit()
        sys.stdout.buffer.write(b"".join(chunks))
        return 0
    print("tls", ftp.sock.version())
    if mode == "active":
        ftp.set_pasv(False)
        data = os.urandom(100_000)
        for i in range(3):
            lines = []
            ftp.retrlines("LIST", lines.append)
            ftp.storbinary(f"STOR active{i}.bin", io.BytesIO(data))
            back = io.BytesIO()
            ftp.retrbinary(f"RETR active{i}.bin", back.write)
            if back.getvalue() != data:
                print(f"round {i}: downloaded data differs")
                return 1
            print(f"round {i}: LIST {len(lines)} lines, STOR+RETR ok")
        ftp.quit()
        return 0
    if mode == "no-reuse":
        ftp.resume = False
        try:
            ftp.retrlines("LIST", lambda line: None)
        except (ftplib.Error, OSError) as e:
            print("refused:", str(e).strip() or type(e).__name__)
            return 3
        print("accepted")
        ftp.quit()
        return 0
    print("unknown mode", mode)
    return 1


if __name__ == "__main__":
    sys.exit(main())
