"""An HTTP endpoint that accepts every POST and drops it: the Loki / remote-write side of a Collector whose test or
benchmark looks at traces only."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any


class NullHTTP(BaseHTTPRequestHandler):
    """Answers each POST with 204 after reading its body."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()
