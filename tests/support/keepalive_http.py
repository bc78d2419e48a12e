"""A static file server speaking HTTP/1.1, connections kept between
requests, as a production web server serves a repository (Python's
`http.server` module speaks HTTP/1.0 by default: a connection per file).

Usage: keepalive_http.py DIRECTORY PORT LOG

Appends one line per request to LOG: the client's port (one per
connection), the path asked, and `waiting` if the request had arrived
before the answer to the one before it on its connection was written (a
pipelining client), else `asked`.
"""
import functools
import http.server
import sys

directory, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.answered = 0

    def handle_one_request(self):
        # After an answer, is the next request here already? Asked without
        # waiting: what is buffered or on the socket, nothing more.
        self.waiting = False
        if self.answered:
            self.connection.setblocking(False)
            try:
                self.waiting = len(self.rfile.peek(1) or b"") > 0
            except BlockingIOError:
                pass
            finally:
                self.connection.setblocking(True)
        super().handle_one_request()
        self.answered += 1

    def log_request(self, code="-", size="-"):
        seen = "waiting" if self.waiting else "asked"
        with open(log, "a") as out:
            out.write(f"{self.client_address[1]} {self.path} {seen}\n")


server = http.server.ThreadingHTTPServer(
    ("127.0.0.1", port), functools.partial(Handler, directory=directory)
)
server.serve_forever()
