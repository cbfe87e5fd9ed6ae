"""A deterministic OpenAI-compatible chat server on loopback, for tests, the demo and benchmarks.

Runs in a background thread (stdlib ``ThreadingHTTPServer``; no extra dependency) and serves
``POST /v1/chat/completions`` plus ``GET /v1/models`` and ``GET /health``.

Behaviour is chosen by magic tokens anywhere in the prompt (or in the model name):

==========================  ==========================================================================
``[[error:429]]``           HTTP 429 with ``Retry-After`` (``retry_after`` seconds, default 0)
``[[error:500]]``           HTTP 500 (any status code works: 400, 401, 503, ...)
``[[flaky:429:2]]``         the first 2 requests with this exact prompt fail with 429, then succeed
``[[slow:1.5]]``            wait 1.5 s before answering (client timeouts)
``[[tool:get_weather]]``    answer with a tool call to ``get_weather`` (finish_reason ``tool_calls``)
``[[words:12]]``            answer with 12 words (one streamed chunk per word)
``[[cached:100]]``          report 100 cached prompt tokens (``prompt_tokens_details.cached_tokens``)
==========================  ==========================================================================

Usage is deterministic: prompt tokens = words in all message contents + 4 per message; completion
tokens = words in the answer (or 10 for a tool call). Streaming sends a usage chunk only when the
request has ``stream_options.include_usage``. Every request is recorded in :attr:`LLMServer.requests`
with the numbers the server sent, so tests compare exact values.

Example::

    with LLMServer(ttft_s=0.05) as srv:
        litellm.completion(model="openai/gpt-5-mini", api_base=srv.base_url, api_key="x", messages=[...])
        srv.requests[-1].prompt_tokens
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_MAGIC = re.compile(r"\[\[(error|flaky|slow|tool|words|cached):([^\]]*)\]\]")
_WORDS = (
    'The', 'quick', 'agent', 'answered', 'the', 'question', 'using', 'the', 'local', 'deterministic', 'model', 'server',
    'and', 'then', 'stopped', 'politely', 'after', 'finishing', 'every', 'requested', 'word', 'in', 'order', 'today',
)


@dataclass
class Served:
    """One request as the server saw and answered it."""

    model: str
    stream: bool
    include_usage: bool
    status: int
    kind: str  # "text", "tool", "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    chunks: int = 0
    response_id: str = ""
    content: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    prompt: str = ""  # text of the last message, to tell requests apart


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(_text_of(m.get("content")).split()) + 4 for m in messages)


class _Server(ThreadingHTTPServer):
    """Tracks open connections so ``stop()`` can close keep-alive sockets and join their threads."""

    daemon_threads = True

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(addr, handler)
        self._conns: dict[Any, threading.Thread | None] = {}
        self._conn_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name="llm-server-conn", daemon=True)
        with self._conn_lock:
            self._conns[request] = t
        t.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections (timeouts, abandoned streams) are expected here; printing a
        # traceback from a server thread would only be noise.
        return None

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, t in conns:
            if t is not None and t is not threading.current_thread():
                t.join(timeout=5)


class LLMServer:
    """Start with ``start()`` or ``with``; stop with ``stop()``. Thread-safe request log."""

    def __init__(self, *, ttft_s: float = 0.0, chunk_delay_s: float = 0.0, latency_s: float = 0.0,
                 retry_after: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ttft_s = ttft_s
        self.chunk_delay_s = chunk_delay_s
        self.latency_s = latency_s
        self.retry_after = retry_after
        self.requests: list[Served] = []
        self._lock = threading.Lock()
        self._flaky: dict[str, int] = {}
        self._seq = 0
        # Bumped by reset(): a request that arrived before it is not recorded after it (a slow request its client
        # gave up on ends its sleep later, and would land among the next test's requests).
        self._generation = 0
        self._stop = threading.Event()
        self._httpd = _Server((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` (pass as ``api_base`` to LiteLLM / ``base_url`` to OpenAI)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LLMServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="llm-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close kept-alive client connections, so no handler thread outlives us."""
        self._stop.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._flaky.clear()
            self._generation += 1

    def _record(self, s: Served, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self.requests.append(s)

    def _next_id(self) -> str:
        with self._lock:
            self._seq += 1
            return f"chatcmpl-local-{self._seq:06d}"

    def _sleep(self, s: float) -> None:
        if s > 0:
            self._stop.wait(s)

    # ------------------------------------------------------------------ HTTP
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/health", "/v1/health"):
                    self._json(200, {"status": "ok"})
                elif self.path.startswith("/v1/models"):
                    self._json(200, {"object": "list", "data": [{"id": "local", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:  # bad length, bytes or JSON (decode errors are ValueErrors)
                    self._json(400, {"error": {"message": "bad json", "type": "invalid_request_error"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                try:
                    server._serve_chat(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # client gave up (timeout test, abandoned stream)

        return Handler

    def _injected_status(self, magic: dict[str, str], prompt_text: str) -> int:
        """The error status the prompt asks for (``error``, or ``flaky`` for its first N calls); 0 for none."""
        if "error" in magic:
            return int(magic["error"] or 500)
        if "flaky" in magic:
            code, _, n = magic["flaky"].partition(":")
            with self._lock:
                seen = self._flaky.get(prompt_text, 0)
                self._flaky[prompt_text] = seen + 1
            if seen < int(n or 1):
                return int(code or 429)
        return 0

    def _serve_chat(self, h: Any, body: dict[str, Any]) -> None:
        model = str(body.get("model", "local"))
        messages = list(body.get("messages") or [])
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        prompt_text = " ".join(_text_of(m.get("content")) for m in messages) + " " + model
        magic: dict[str, str] = {}
        for k, v in _MAGIC.findall(prompt_text):
            magic.setdefault(k, v)
        headers = {k.lower(): v for k, v in h.headers.items()}
        last = _text_of(messages[-1].get("content")) if messages else ""
        generation = self._generation
        self._sleep(self.latency_s)
        if "slow" in magic:
            self._sleep(float(magic["slow"] or 1.0))

        status = self._injected_status(magic, prompt_text)
        if status:
            self._record(Served(model, stream, include_usage, status, "error", headers=headers, prompt=last),
                         generation)
            kind = {429: "rate_limit_exceeded", 500: "server_error", 401: "invalid_api_key",
                    400: "invalid_request_error"}.get(status, "error")
            extra = {"Retry-After": f"{self.retry_after:g}"} if status == 429 else {}
            h._json(status, {"error": {"message": f"local server error {status}", "type": kind, "code": kind}},
                    extra)
            return

        prompt_tokens = count_prompt_tokens(messages)
        cached = min(int(magic.get("cached", 0) or 0), prompt_tokens)
        rid = self._next_id()
        created = int(time.time())
        words, tool_calls, completion_tokens, finish, kind = _answer(magic, rid)
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        if cached:
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        content = " ".join(words)
        served = Served(model, stream, include_usage, 200, kind, prompt_tokens, completion_tokens, cached,
                        0, rid, content, headers, last)

        if not stream:
            self._sleep(self.ttft_s)
            msg: dict[str, Any] = {"role": "assistant", "content": content or None}
            if tool_calls:
                msg["tool_calls"] = [{k: v for k, v in tc.items() if k != "index"} for tc in tool_calls]
            self._record(served, generation)
            h._json(200, {"id": rid, "object": "chat.completion", "created": created, "model": model,
                          "system_fingerprint": "fp_local",
                          "choices": [{"index": 0, "message": msg, "finish_reason": finish}], "usage": usage})
            return

        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        self._record(served, generation)

        def send(obj: Any) -> None:
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()

        def chunk(delta: dict[str, Any], fin: str | None = None) -> dict[str, Any]:
            return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": "fp_local",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]}

        self._sleep(self.ttft_s)
        if tool_calls:
            send(chunk({"role": "assistant", "content": None, "tool_calls": tool_calls}))
            served.chunks += 1
        else:
            for i, w in enumerate(words):
                if i:
                    self._sleep(self.chunk_delay_s)
                delta = {"content": (" " if i else "") + w}
                if i == 0:
                    delta["role"] = "assistant"
                send(chunk(delta))
                served.chunks += 1
        send(chunk({}, finish))
        if include_usage:
            send({"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                  "choices": [], "usage": usage})
        send(b"[DONE]")
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()


def _answer(magic: dict[str, str], rid: str) -> tuple[list[str], list[dict[str, Any]], int, str, str]:
    """What the model answers: a tool call (``tool``) or N words (``words``), as (words, tool_calls,
    completion_tokens, finish_reason, kind)."""
    if "tool" in magic:
        name = magic["tool"] or "get_weather"
        tool_calls = [{"index": 0, "id": f"call_{rid[-6:]}", "type": "function",
                       "function": {"name": name, "arguments": json.dumps({"city": "Paris"})}}]
        return [], tool_calls, 10, "tool_calls", "tool"
    words = [_WORDS[i % len(_WORDS)] for i in range(int(magic.get("words", 8) or 8))]
    return words, [], len(words), "stop", "text"
