"""Serve a directory on $PORT, answering $HEALTH_ROUTE with "Healthy!" (stdlib only)."""

import functools
import http.server
import os
import signal
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, plus the health route the load balancer polls."""

    health_route = os.environ.get("HEALTH_ROUTE", "")

    def do_GET(self) -> None:
        if self.health_route and self.path.split("?", 1)[0] == self.health_route:
            body = b"Healthy!"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


def main() -> None:
    """Serve until SIGTERM (what ECS and docker stop send)."""
    root = sys.argv[1]
    port = int(os.environ.get("PORT", "8080"))
    handler = functools.partial(Handler, directory=root)
    server = http.server.ThreadingHTTPServer(("", port), handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
