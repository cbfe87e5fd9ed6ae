"""Serve an ASGI app with real uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import threading
from typing import Any

from agentpress_otel._harness._proc import free_port, wait_until


class UvicornThread:
    """``with UvicornThread(app) as srv: httpx.get(srv.url + "/")``."""

    def __init__(self, app: Any, *, port: int | None = None, log_level: str = "warning", **config: Any) -> None:
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level=log_level, lifespan="on", **config)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def start(self, timeout: float = 15.0) -> UvicornThread:
        self.thread.start()
        wait_until(lambda: bool(self.server.started) or not self.thread.is_alive(), timeout=timeout, what="uvicorn")
        if not self.server.started:
            raise RuntimeError(f"uvicorn failed to start on port {self.port}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
