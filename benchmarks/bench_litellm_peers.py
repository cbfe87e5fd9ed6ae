"""Per-call CPU of a LiteLLM call under each instrumentation, paired against the uninstrumented call.

Variants, each in its own long-lived worker process (``_litellm_worker.py``):

* ``uninstrumented``: LiteLLM alone (the baseline);
* ``sdk_span``: one bare OTel SDK span around the call (BatchSpanProcessor, OTLP/HTTP);
* ``ours``: ``agentpress_otel.instrument()`` with its defaults (traces, metrics, logs, every integration);
* ``ours_litellm``: ``instrument(integrations=["litellm"])``;
* ``ours_grpc``: ``instrument()`` with its defaults and its default protocol, OTLP/gRPC (the other variants
  export over OTLP/HTTP, as the peers' docs show);
* ``openinference``: ``openinference-instrumentation-litellm``, in its own venv;
* ``traceloop``: OpenLLMetry's ``opentelemetry-instrumentation-openai`` (LiteLLM calls the OpenAI SDK for
  ``openai/`` models), in its own venv.

Peers are installed from PyPI into separate venvs under ``$AGENTPRESS_OTEL_BENCH_CACHE`` (default
``~/.cache/agentpress-otel/bench-venvs``), with the same LiteLLM version as ours; a peer that cannot be
installed is skipped with the reason printed. Every variant but ``ours_grpc`` exports over OTLP/HTTP to one loopback
receiver; the LLM server and the receiver run in this (driver) process, so they are not counted.

Every worker switches its instrumentation on and off between slices of calls (each tool's own
``instrument``/``uninstrument``; the bare span and LiteLLM alone have nothing to switch), and the cost is the
difference of process CPU per call (all threads: batch processors, log worker, export included, since each slice
ends with a flush) between its "on" and "off" slices. Both halves run in the same process, heap and connection pool:
two processes running the very same code differ by a few per cent of LiteLLM's CPU, which compared across processes
read as instrumentation cost. A round runs ``PAIRS`` on/off pairs of ``SLICE`` calls per worker, back
to back, the workers taking turns pair by pair; the uninstrumented worker runs the same pairs, and its "delta" (same
code both halves) is printed as the noise floor. A flush also collects and exports every metric series in both
halves: that fixed cost, once per export interval (60 s) in production, cancels out, while the drain of the slice's
own measurements (our deferred GenAI metrics) is charged to the "on" slice. Medians and ranges over ``ROUNDS``
rounds. Every worker runs ``gc.freeze()`` after its warm-up (see the worker), so a full collection of LiteLLM's heap
does not land in one random slice.
Run:
``.venv/bin/python benchmarks/bench_litellm_peers.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agentpress_otel._harness.llm_server import LLMServer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # test-only helpers (harness.*)
from _common import report  # noqa: E402
from harness.otlp_sink import OTLPSink  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_PEER_ROUNDS", "6"))
SLICE = int(os.environ.get("BENCH_PEER_SLICE", "30"))  # calls per slice, each ending with a flush (export)
PAIRS = int(os.environ.get("BENCH_PEER_PAIRS", "3"))  # on/off slice pairs per worker and round
CACHE = Path(os.environ.get("AGENTPRESS_OTEL_BENCH_CACHE", Path.home() / ".cache" / "agentpress-otel" / "bench-venvs"))

#: Peer packages, pinned so a later run measures the same code (versions current at the time of writing).
PEERS: dict[str, list[str]] = {
    "openinference": ["openinference-instrumentation-litellm==0.1.51"],
    "traceloop": ["opentelemetry-instrumentation-openai==0.62.4"],
}
GOALS = {("ours", False): "<= 250 us", ("ours", True): "<= 300 us", ("ours_grpc", False): "<= 250 us",
         ("ours_grpc", True): "<= 300 us", ("ours_litellm", False): "<= 150 us",
         ("ours_litellm", True): "<= 150 us"}  # fmt: skip


def _pkg_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def ensure_peer_venv(name: str) -> tuple[Path | None, str]:
    """(python of the peer's venv, "") or (None, why it is unavailable). Installs once, then reuses."""
    venv = CACHE / name
    py = venv / "bin" / "python"
    want = [f"litellm=={_pkg_version('litellm')}", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
            *PEERS[name]]
    stamp = venv / ".bench-stamp"
    if py.exists() and stamp.exists() and stamp.read_text() == " ".join(want):
        return py, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *want], check=True, capture_output=True, text=True,
                       timeout=900)
    except subprocess.CalledProcessError as exc:
        return None, f"pip install {' '.join(want)} failed: {(exc.stderr or '')[-300:].strip()}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"could not create the venv: {exc}"
    stamp.write_text(" ".join(want))
    return py, ""


def spans_by_variant(sink: OTLPSink) -> dict[str, int]:
    """Spans the receiver got from each variant (its workers export as service ``bench-<variant>``): a variant that
    records nothing for these calls shows a delta that is no cost comparison."""
    got: dict[str, int] = {}
    with sink.lock:
        reqs = list(sink.received.traces)
    for r in reqs:
        for rs in r.resource_spans:
            name = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
            n = sum(len(ss.spans) for ss in rs.scope_spans)
            got[name.removeprefix("bench-")] = got.get(name.removeprefix("bench-"), 0) + n
    return got


def print_silent(names: list[str], spans: dict[str, int]) -> None:
    for v in names:
        if v != "uninstrumented" and not spans.get(v):
            print(f"NOTE {v} exported no span for any of these calls: its delta is what it costs to record nothing, "
                  "not a comparison")


class Worker:
    def __init__(self, variant: str, python: str, llm: str, otlp: str, *, wrap: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.variant = variant
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
        self.err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close(); not a pipe: a chatty worker must never block
        self.proc = subprocess.Popen([*(wrap or []), python, str(HERE / "_litellm_worker.py"), variant, llm, otlp],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, env=env)

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:  # the app under test may print too (JSON log lines): ours are marked
            line = self.proc.stdout.readline()
            if not line:
                self.err.seek(0)
                err = self.err.read()
                raise RuntimeError(f"{self.variant} worker died: {err[-1500:]}")
            if line.startswith("@@"):
                return dict(json.loads(line[2:]))

    def run(self, calls: int, stream: bool, on: bool) -> float:
        """Per-call process CPU (us) of ``calls`` calls with the instrumentation ``on`` or off."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"calls": calls, "stream": stream, "on": on}) + "\n")
        self.proc.stdin.flush()
        return float(self.read()["cpu_us"])

    def calibrate(self, n: int) -> float:
        """Per-iteration process CPU (us) of the worker's pure-Python calibration workload."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"calibrate": n}) + "\n")
        self.proc.stdin.flush()
        return float(self.read()["cpu_us"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.err.close()


def _round(workers: dict[str, Worker], names: list[str], rnd: int, stream: bool) -> dict[str, tuple[float, float]]:
    """Per worker: (per-call CPU with the instrumentation off, per-call delta on minus off) over one round.

    Each worker runs PAIRS pairs of slices of SLICE calls, one slice on and one off, back to back (which comes first
    alternates), and the workers take turns pair by pair in an order rotated per pair: a change in machine load
    falls on both halves of a pair and on every variant alike."""
    on: dict[str, list[float]] = {v: [] for v in names}
    off: dict[str, list[float]] = {v: [] for v in names}
    for j in range(PAIRS):
        k = (rnd + j) % len(names)
        for v in names[k:] + names[:k]:
            for state in ((True, False) if (rnd + j) % 2 == 0 else (False, True)):
                (on if state else off)[v].append(workers[v].run(SLICE, stream, state))
    return {v: (statistics.fmean(off[v]), statistics.fmean(on[v]) - statistics.fmean(off[v])) for v in names}


#: The variants run in this venv.
OURS = ("uninstrumented", "sdk_span", "ours", "ours_grpc", "ours_litellm")


def otlp_endpoint(variant: str, sink: OTLPSink) -> str:
    """Where ``variant`` exports: the receiver's gRPC port for ``ours_grpc``, its OTLP/HTTP base URL otherwise."""
    return sink.grpc_endpoint if variant == "ours_grpc" else sink.http_endpoint


def variant_pythons() -> tuple[dict[str, str], dict[str, str]]:
    """(variant -> its interpreter, skipped peer -> why): ours in this venv, each peer in its own (installed on
    first use); ``BENCH_PEER_ONLY=a,b`` keeps those variants (and the uninstrumented baseline)."""
    skipped: dict[str, str] = {}
    only = set(filter(None, os.environ.get("BENCH_PEER_ONLY", "").split(","))) | {"uninstrumented"}
    pythons: dict[str, str] = {v: sys.executable for v in OURS}
    for peer in PEERS:
        if len(only) > 1 and peer not in only:
            continue
        py, why = ensure_peer_venv(peer)
        if py is None:
            skipped[peer] = why
            print(f"SKIPPED {peer}: {why}")
        else:
            pythons[peer] = str(py)
    if len(only) > 1:
        pythons = {v: py for v, py in pythons.items() if v in only}
    return pythons, skipped


def main() -> None:
    pythons, skipped = variant_pythons()
    with LLMServer() as llm:
        sink = OTLPSink(keep_alive=True).start()
        try:
            workers = {v: Worker(v, py, llm.base_url, otlp_endpoint(v, sink)) for v, py in pythons.items()}
            for v, w in list(workers.items()):
                try:
                    w.read()  # ready after its warm-up
                except RuntimeError as exc:
                    skipped[v] = str(exc)
                    print(f"SKIPPED {v}: {exc}")
                    del workers[v]
            names = list(workers)
            raw: dict[str, dict[str, list[float]]] = {v: {"plain": [], "stream": []} for v in names}
            deltas: dict[str, dict[str, list[float]]] = {v: {"plain": [], "stream": []} for v in names}
            for rnd in range(ROUNDS):
                for stream in (False, True):
                    key = "stream" if stream else "plain"
                    for v, (off, delta) in _round(workers, names, rnd, stream).items():
                        raw[v][key].append(off)
                        deltas[v][key].append(delta)
                print(f"round {rnd + 1}/{ROUNDS} done", flush=True)
            for w in workers.values():
                w.close()
            spans = spans_by_variant(sink)
        finally:
            sink.stop()

    print(f"\nLiteLLM acompletion against a loopback server: {ROUNDS} rounds of {PAIRS} on/off pairs of {SLICE}-call"
          " slices per variant;")
    print("process CPU per call (all threads, export included), instrumentation on minus off in the same process")
    print(f"{'variant':16} {'non-streaming: +us (median)':>28} {'range':>18}"
          f" {'streaming: +us (median)':>25} {'range':>18}")
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {"rounds": ROUNDS, "pairs": PAIRS, "slice": SLICE, "off_cpu_us": raw,
                               "deltas_us": deltas, "skipped": skipped, "litellm": _pkg_version("litellm")}
    base_plain = statistics.median(raw["uninstrumented"]["plain"])
    base_stream = statistics.median(raw["uninstrumented"]["stream"])
    up, us = raw["uninstrumented"]["plain"], raw["uninstrumented"]["stream"]
    print(f"{'(LiteLLM alone)':16} {base_plain:>24.0f} us {f'{min(up):.0f}..{max(up):.0f}':>18}"
          f" {base_stream:>21.0f} us {f'{min(us):.0f}..{max(us):.0f}':>18}")
    for v in names:
        cells = []
        for key in ("plain", "stream"):
            d = deltas[v][key]
            cells.append((statistics.median(d), min(d), max(d)))
        # The uninstrumented worker's "on" and "off" run the same code: its delta is what this machine's noise
        # alone reads as a cost, the floor under which no difference can be told apart.
        label = "noise (none/none)" if v == "uninstrumented" else v
        print(f"{label:16} {cells[0][0]:>+25.0f} {f'{cells[0][1]:+.0f}..{cells[0][2]:+.0f}':>18}"
              f" {cells[1][0]:>+22.0f} {f'{cells[1][1]:+.0f}..{cells[1][2]:+.0f}':>18}")
        for (med, lo, hi), stream, base in ((cells[0], False, base_plain), (cells[1], True, base_stream)):
            what = "same code on and off (noise)" if v == "uninstrumented" else v
            rows.append({"name": f"LiteLLM call CPU, {what}, {'streaming' if stream else 'non-streaming'}: +us",
                         "value": med, "unit": "us", "baseline": base, "ratio": (base + med) / base,
                         "goal": GOALS.get((v, stream), ""), "range": [lo, hi]})
    for v, why in skipped.items():
        print(f"{v:16} skipped: {why[:200]}")
    print_silent(names, spans)
    details["spans_exported"] = spans
    report("litellm_peers", rows, details=details)


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    print(f"({time.monotonic() - t0:.0f} s)")
