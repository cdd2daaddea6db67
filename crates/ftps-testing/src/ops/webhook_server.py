# A local HTTPS server for the webhook tests: Python's http.server with the
# ssl module, on 127.0.0.1 and a port the system picks (printed first), with
# the certificate and key it is given. Each POST body is appended as one
# line to the output file and answered 204 (or, with a fourth argument N,
# the first N POSTs are answered 503, to exercise retries).
import http.server
import ssl
import sys

cert, key, out = sys.argv[1:4]
failures = [int(sys.argv[4]) if len(sys.argv) > 4 else 0]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        if failures[0] > 0:
            failures[0] -= 1
            self.send_response(503)
            self.end_headers()
            return
        with open(out, "ab") as f:
            f.write(body.rstrip(b"\n") + b"\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
