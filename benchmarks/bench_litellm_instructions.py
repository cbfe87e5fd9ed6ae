"""Instructions per real LiteLLM call under each instrumentation: the peer benchmark without the machine's noise.

``bench_litellm_peers.py`` measures process CPU, and on a shared VM the same code moves by ±17 % between blocks
of calls, so nothing below about ±500 µs per call can be ranked there. Instruction counts do not move with the
neighbours' load. This script runs the same workers (``_litellm_worker.py``, real ``litellm.acompletion`` calls
against the loopback LLM server, export over OTLP/HTTP to a loopback receiver, each slice ending with a flush)
under valgrind's callgrind. Each worker switches its instrumentation on and off between slices, as in the peer
benchmark; callgrind counts the instructions of each slice on every thread (the batch processors, the log worker
and the export included) and nothing else: start-up and warm-up run uncounted, the counters are zeroed after each
switch and dumped after each slice.

Printed per variant: instructions per call with the instrumentation off, on minus off (median and range over the
slice pairs) and the ratio; every variant against OpenInference's. The uninstrumented worker's own on/off delta
(same code) shows what is left of noise (thread timing, garbage collection: a fraction of a per cent of a call).
Timers that fire by wall time are moved out of the slices too (the batch processors', the metric reader's, our
event-loop probe's): under valgrind a 30-call slice lasts 10-20 s instead of about 0.2 s, and each would fire
that many times more often than natively. What stays is the log worker's idle safety-net wake, once a second.
The µs column converts instructions to CPU time at LiteLLM's own rate on this machine (the uninstrumented worker's
native CPU per call over its instructions, measured in the same run; it includes kernel time, which callgrind does
not count); the
"floor" column at the rate of a pure-Python hot loop. The instruction counts and ratios are the exact figures.

Set ``BENCH_CG_OUT=DIR`` to keep the dumps and compare slices with ``callgrind_annotate``.

Needs valgrind (Debian package ``valgrind``, with ``callgrind.h``) and a C compiler; skipped with the reason
printed otherwise. Run: ``.venv/bin/python benchmarks/bench_litellm_instructions.py`` (about 10 min on 2 cores).
"""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agentpress_otel._harness.llm_server import LLMServer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # test-only helpers (harness.*)
from _common import report  # noqa: E402
from bench_litellm_peers import (  # noqa: E402
    CACHE,
    GOALS,
    Worker,
    otlp_endpoint,
    print_silent,
    spans_by_variant,
    variant_pythons,
)
from harness.otlp_sink import OTLPSink  # noqa: E402

SLICE = int(os.environ.get("BENCH_CG_SLICE", "30"))  # calls per counted slice, as in the peer benchmark
PAIRS = int(os.environ.get("BENCH_CG_PAIRS", "3"))  # on/off slice pairs per worker and mode
NATIVE_SLICES = int(os.environ.get("BENCH_CG_NATIVE_SLICES", "8"))  # uncounted slices for the µs scale
CALIBRATION = 20_000  # iterations of the worker's pure-Python calibration workload, natively (a tenth counted)
PARALLEL = int(os.environ.get("BENCH_CG_PARALLEL", str(os.cpu_count() or 1)))

#: Under callgrind a 30-call slice takes 10-20 s instead of 0.2 s, so the batch processors' timers (ours 1 s, the
#: SDK's 5 s) would fire many times inside a slice and add exports a native slice never makes, by wall time, so by
#: load. With the timers far out, every variant exports once per slice, at its flush, as natively.
#: Issue 19's goals in the unit that does not move with the host: defaults "within 2x of OpenInference's span-only
#: cost" (its own words); LiteLLM-only at or below OpenInference (its +150 µs sat under OpenInference's +163 µs as
#: it measured them). Its µs figures (GOALS) stay printed: on this machine a bare SDK span alone costs more than
#: the LiteLLM-only one, and at some rates more than the defaults' (benchmarks/README.md).
RATIO_GOALS = {"ours": "<= 2.0x", "ours_grpc": "<= 2.0x", "ours_litellm": "<= 1.0x"}

_TIMERS = {"OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_BLRP_SCHEDULE_DELAY": "600000",
           "OTEL_METRIC_EXPORT_INTERVAL": "600000", "AGENTPRESS_OTEL_LOOP_PROBE_INTERVAL_S": "600"}

_HELPER = """#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void cg_zero(void) { CALLGRIND_ZERO_STATS; }
void cg_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


def build_helper() -> tuple[Path | None, str]:
    """(the client-request helper library, "") or (None, why it cannot be built)."""
    if shutil.which("valgrind") is None:
        return None, "valgrind is not installed (Debian: apt-get install valgrind)"
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler to build the callgrind client-request helper"
    out = CACHE / "callgrind-helper.so"
    src = CACHE / "callgrind-helper.c"
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (out.exists() and src.exists() and src.read_text() == _HELPER):
        src.write_text(_HELPER)
        proc = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(src)], capture_output=True, text=True)
        if proc.returncode != 0:
            return None, f"building the callgrind helper failed (is callgrind.h there?): {proc.stderr[-300:]}"
    return out, ""


class CountedWorker(Worker):
    """A peer-benchmark worker run under callgrind; each slice's instruction count is read from its dump."""

    def __init__(self, variant: str, python: str, llm: str, otlp: str, helper: Path, outdir: Path) -> None:
        self.outdir = outdir / variant
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.slices = 0
        super().__init__(variant, python, llm, otlp, wrap=[
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no", "--dump-line=no",
            f"--callgrind-out-file={self.outdir}/cg.%p"], env={"BENCH_CALLGRIND_LIB": str(helper), **_TIMERS})

    def count(self, calls: int, stream: bool, on: bool) -> float:
        """Instructions per call of one slice of ``calls`` calls with the instrumentation ``on`` or off."""
        self.run(calls, stream, on)
        return self._dumped(calls)

    def count_calibration(self, n: int) -> float:
        """Instructions per iteration of the calibration workload."""
        self.calibrate(n)
        return self._dumped(n)

    def _dumped(self, calls: int) -> float:
        self.slices += 1
        # A client-request dump holds every thread's instructions since the last zeroing (one file per dump; with
        # --separate-threads it would hold the calling thread's only, so that option is not offered).
        dump = self.outdir / f"cg.{self.proc.pid}.{self.slices}"
        total = [int(line.split()[1]) for line in (dump.read_text().splitlines() if dump.exists() else [])
                 if line.startswith("summary:")]
        if not total:
            raise RuntimeError(f"no callgrind dump for slice {self.slices} of {self.variant} in {self.outdir}")
        return total[0] / calls


def _measure(start: Callable[[], CountedWorker]) -> dict[str, dict[str, list[float]]]:
    """Per mode: instructions per call of the "off" slices and the per-pair deltas (on minus off); for the
    uninstrumented worker also the calibration workload's instructions per iteration. The worker starts here, when
    a core is free: one started early would idle after its warm-up, and its first slice would pay for connections
    the LLM server has closed meanwhile."""
    w = start()
    w.read()  # ready after its (uncounted) warm-up
    got: dict[str, dict[str, list[float]]] = {}
    if w.variant == "uninstrumented":
        w.count_calibration(CALIBRATION // 10)  # first run warms the code; counted runs after it
        got["calibration"] = {"ir": [w.count_calibration(CALIBRATION // 10) for _ in range(2)]}
    for stream in (False, True):
        off: list[float] = []
        delta: list[float] = []
        w.count(SLICE // 3 or 1, stream, True)  # settles the mode (first stream, pools), not kept
        for j in range(PAIRS):
            order = (True, False) if j % 2 == 0 else (False, True)
            pair = {state: w.count(SLICE, stream, state) for state in order}
            off.append(pair[False])
            delta.append(pair[True] - pair[False])
        got["stream" if stream else "plain"] = {"off": off, "delta": delta}
    w.close()
    return got


def main() -> None:
    helper, why = build_helper()
    if helper is None:
        print(f"SKIPPED: {why}")
        report("litellm_instructions", [], details={"skipped": why})
        return
    pythons, skipped = variant_pythons()
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    native: dict[str, list[float]] = {"plain": [], "stream": []}
    keep = os.environ.get("BENCH_CG_OUT")  # keep the dumps there (callgrind_annotate shows where a delta goes)
    with LLMServer() as llm, tempfile.TemporaryDirectory(prefix="apotel-cg-") as tmp_dir:
        tmp = keep or tmp_dir
        sink = OTLPSink(keep_alive=True).start()
        try:
            # The µs scale: the uninstrumented worker natively, before the counted runs load the machine.
            w = Worker("uninstrumented", sys.executable, llm.base_url, sink.http_endpoint)
            w.read()
            for i in range(NATIVE_SLICES):
                for stream in (False, True):
                    native["stream" if stream else "plain"].append(w.run(30, stream, i % 2 == 0))
            w.calibrate(CALIBRATION // 10)
            native["calibration"] = [w.calibrate(CALIBRATION) for _ in range(5)]
            w.close()
            with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
                # Not all at once: under valgrind each worker wants a core, and the LLM server must keep up.
                futures = {v: pool.submit(_measure, functools.partial(CountedWorker, v, py, llm.base_url,
                                                                      otlp_endpoint(v, sink), helper, Path(tmp)))
                           for v, py in pythons.items()}
                for v, fut in futures.items():
                    try:
                        results[v] = fut.result()
                    except RuntimeError as exc:
                        skipped[v] = str(exc)
                        print(f"SKIPPED {v}: {exc}")
            spans = spans_by_variant(sink)
        finally:
            sink.stop()

    if "uninstrumented" not in results:
        print(f"no baseline: {skipped.get('uninstrumented', 'the uninstrumented worker failed')}")
        report("litellm_instructions", [], details={"skipped": skipped})
        return
    base = results["uninstrumented"]
    # Instructions to CPU time, two rates measured here. A whole LiteLLM call's rate (its native CPU over its
    # instructions) includes what callgrind does not count as instructions: the kernel's socket and event-loop work
    # and cache misses of code that runs once per call. Instrumentation runs the same way (interleaved with the
    # call, exporting over sockets), and the native peer benchmark's deltas agree with this rate, so it gives the
    # estimate. The pure-Python rate (the calibration workload: a hot loop, no I/O) is the floor.
    py_rate = min(native["calibration"]) / statistics.median(base["calibration"]["ir"])
    rows: list[dict[str, Any]] = []
    print(f"\nLiteLLM acompletion against a loopback server under callgrind: {PAIRS} on/off pairs of {SLICE}-call "
          "slices per variant and mode;")
    print("instructions per call (all threads, export included), instrumentation on minus off in the same process")
    print(f"pure-Python rate: {py_rate * 1e3:.3f} ns per instruction (calibration: {min(native['calibration']):.1f} us"
          f" native, {statistics.median(base['calibration']['ir']):,.0f} instructions per iteration)")
    print(f"{'variant':18} {'mode':14} {'off: Ir/call':>14} {'on - off: Ir/call':>18} {'range':>22} {'ratio':>7}"
          f" {'~us':>6} {'floor':>6}")
    ref = "openinference" if "openinference" in results else None
    for key, label in (("plain", "non-streaming"), ("stream", "streaming")):
        base_ir = statistics.median(base[key]["off"])
        native_us = statistics.median(native[key])
        call_rate = native_us / base_ir
        print(f"{'(LiteLLM alone)':18} {label:14} {base_ir:>14,.0f}   native CPU {native_us:.0f} us"
              f" per call ({call_rate * 1e3:.3f} ns per instruction, kernel time included)")
        for v, got in results.items():
            d, off = got[key]["delta"], statistics.median(got[key]["off"])
            med = statistics.median(d)
            name = "noise (none/none)" if v == "uninstrumented" else v
            print(f"{name:18} {label:14} {off:>14,.0f} {med:>+18,.0f} {f'{min(d):+,.0f}..{max(d):+,.0f}':>22}"
                  f" {(off + med) / off:>7.3f} {med * call_rate:>+6.0f} {med * py_rate:>+6.0f}")
            rows.append({"name": f"LiteLLM call instructions, {name}, {label}: ~+us", "value": med * call_rate,
                         "unit": "us", "baseline": native_us, "ratio": (off + med) / off,
                         "goal": GOALS.get((v, key == "stream"), ""), "instructions": med,
                         "floor_us": med * py_rate, "range": [min(d) * call_rate, max(d) * call_rate]})
        if ref is not None:
            ref_ir = statistics.median(results[ref][key]["delta"])
            for v in results:
                if v not in ("uninstrumented", ref) and spans.get(v):  # a variant that recorded nothing: no ratio
                    mine = statistics.median(results[v][key]["delta"])
                    print(f"{v} / {ref}, {label}: {mine / ref_ir:.2f}x the instructions")
                    rows.append({"name": f"LiteLLM call instructions, {v} vs {ref}, {label}", "value": mine,
                                 "unit": "Ir", "baseline": ref_ir, "ratio": mine / ref_ir,
                                 "goal": RATIO_GOALS.get(v, "reported")})
    for v, reason in skipped.items():
        print(f"{v:18} skipped: {reason[:200]}")
    print_silent(list(results), spans)
    if keep:
        print(f"callgrind dumps kept in {keep}: slice k of a worker is <variant>/cg.<pid>.<k> (pairs in order, "
              "non-streaming first; which half came first alternates per pair)")
    report("litellm_instructions", rows, details={"slice": SLICE, "pairs": PAIRS, "instructions": results,
                                                  "native_cpu_us": native, "skipped": skipped,
                                                  "spans_exported": spans, "python_ns_per_instruction": py_rate * 1e3})


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    print(f"({time.monotonic() - t0:.0f} s)")
