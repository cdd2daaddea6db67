"""pyftpdlib with TLS required, for the FTPS interop tests of the ftps client.

Started by ftps_testing::script_servers: python3 pyftpdlib_server.py ROOT USER
PASSWORD CERT KEY. Listens on 127.0.0.1 on a port the kernel picks and prints
"LISTENING <port>" on stdout once it accepts connections. TLS is required on
the control connection (before USER) and on data connections (PROT P); the
user may do everything, MFMT included (permission "T"). Exits by itself when
the process that started it is gone.
"""
import os
import sys
import threading
import time

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer


def exit_with_parent(parent):
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def main():
    root, user, password, cert, key = sys.argv[1:6]
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elradfmwMT")

    class Handler(TLS_FTPHandler):
        pass

    Handler.authorizer = authorizer
    Handler.certfile = cert
    Handler.keyfile = key
    Handler.tls_control_required = True
    Handler.tls_data_required = True
    server = FTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    print("LISTENING", server.socket.getsockname()[1], flush=True)
    server.serve_forever()


main()
