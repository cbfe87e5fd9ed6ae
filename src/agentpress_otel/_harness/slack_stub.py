"""A local stand-in for Slack incoming webhooks: records every POST, answers as scripted.

Used by the Alertmanager tests, the in-process Slack handler tests and the demo (``python -m
agentpress_otel._harness.slack_stub`` prints what would have reached Slack). It runs in a thread of the
calling process on a free loopback port; nothing leaves the machine.

Example::

    with SlackStub() as slack:
        send_something_to(slack.url)
        posts = slack.wait_for(1, timeout=5)
        assert posts[0].json["text"]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Post:
    """One request received by the stub."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    status: int  # what the stub answered

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        """Everything human-readable in the message (Block Kit text, attachments, fallback), for assertions."""
        return json.dumps(self.json) if self.json is not None else self.body.decode("utf-8", "replace")


@dataclass
class _Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class SlackStub:
    """Threaded HTTP server on 127.0.0.1:<free port> that records posts.

    ``reply(...)`` queues scripted answers (e.g. a 429 with ``Retry-After``) used for the next requests in order;
    once the queue is empty every request gets ``default`` (200 "ok", like Slack).
    """

    def __init__(self, *, default_status: int = 200, default_delay_s: float = 0.0) -> None:
        self.default = _Reply(status=default_status, delay_s=default_delay_s)
        self._script: deque[_Reply] = deque()
        self._posts: list[Post] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> SlackStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = stub._next_reply()
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                post = Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic(),
                            reply.status)
                with stub._cond:
                    stub._posts.append(post)
                    stub._cond.notify_all()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up (timeout test); nothing to do
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- use ------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """A webhook URL shaped like Slack's (the path is recorded, never checked)."""
        return f"http://127.0.0.1:{self.port}/services/T0000000/B0000000/stubstubstubstubstub"

    def reply(self, status: int = 200, *, body: bytes = b"ok", headers: dict[str, str] | None = None,
              delay_s: float = 0.0, times: int = 1) -> None:
        """Script the next ``times`` answers."""
        with self._cond:
            for _ in range(times):
                self._script.append(_Reply(status, body, dict(headers or {}), delay_s))

    def _next_reply(self) -> _Reply:
        with self._cond:
            return self._script.popleft() if self._script else self.default

    @property
    def posts(self) -> list[Post]:
        with self._cond:
            return list(self._posts)

    def accepted(self) -> list[Post]:
        """Posts the stub answered with 2xx (what a real Slack would have shown)."""
        return [p for p in self.posts if 200 <= p.status < 300]

    def clear(self) -> None:
        with self._cond:
            self._posts.clear()

    def wait_for(self, n: int, *, timeout: float, accepted_only: bool = False) -> list[Post]:
        """Block until at least ``n`` posts arrived (or raise TimeoutError)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                have = [p for p in self._posts if not accepted_only or 200 <= p.status < 300]
                if len(have) >= n:
                    return have
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {n} Slack posts within {timeout}s, got {len(have)}")
                self._cond.wait(left)

    def __iter__(self) -> Iterator[Post]:
        return iter(self.posts)


def main(argv: list[str] | None = None) -> int:
    """Run the stub in the foreground and print every post (demo aid)."""
    ap = argparse.ArgumentParser(description="Local Slack webhook stand-in; prints what would reach Slack.")
    ap.parse_args(argv)
    stub = SlackStub().start()
    print(f"Slack stand-in listening: {stub.url}", flush=True)
    seen = 0
    try:
        while True:
            posts = stub.wait_for(seen + 1, timeout=3600)
            for p in posts[seen:]:
                print(json.dumps(p.json, indent=2) if p.json is not None else p.body.decode("utf-8", "replace"),
                      flush=True)
            seen = len(posts)
    except KeyboardInterrupt:
        return 0
    finally:
        stub.stop()


if __name__ == "__main__":
    raise SystemExit(main())
