"""Run every ``benchmarks/bench_*.py``, then print one table of ratios with goals and pass/fail.

Each benchmark is a plain script that measures against a baseline in the same run and writes
``benchmarks/results/<area>.json`` (via ``_common.report``). This runner starts them one after the
other (a subprocess each, so they never share state or GIL), collects those files and writes
``benchmarks/results/summary.json``: the machine, every row with its goal and verdict, and how each
script ended. ``--compare OLD.json`` diffs this run against an earlier summary.

Usage::

    make bench                                   # = .venv/bin/python benchmarks/run.py
    .venv/bin/python benchmarks/run.py --only http,agent
    .venv/bin/python benchmarks/run.py --no-run --compare old-summary.json   # re-tabulate, then diff
    .venv/bin/python benchmarks/run.py --strict  # exit 1 if a goal is missed (default: only if a script fails)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402

_GOAL = re.compile(r"^\s*(<=|>=|<|>|≤|≥)\s*([0-9]*\.?[0-9]+)\s*([^\s(]*)")


def discover(only: set[str] | None, skip: set[str]) -> list[Path]:
    out = []
    for p in sorted(HERE.glob("bench_*.py")):
        name = p.stem.removeprefix("bench_")
        if (only is None or name in only) and name not in skip:
            out.append(p)
    return out


#: Scripts that need longer than the default timeout: the peer comparison installs two venvs on its first
#: run and runs 6 interleaved rounds of real LiteLLM calls in 6 processes; the instruction count runs the same
#: workers under callgrind (about 10 min on 2 cores).
_SLOW = {"bench_litellm_peers.py": 1800.0, "bench_litellm_instructions.py": 1800.0, "bench_startup.py": 600.0}


def run_script(path: Path, timeout_s: float) -> dict[str, Any]:
    """Run one benchmark script, echoing its output; return how it ended."""
    print(f"\n##### {path.name}", flush=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(path)], cwd=HERE.parent, timeout=timeout_s, capture_output=True, text=True,
            check=False,
        )
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        status = f"timeout after {timeout_s:.0f}s"
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    secs = time.monotonic() - t0
    print(out.rstrip())
    if status != "ok":
        print(err[-4000:].rstrip(), file=sys.stderr)
    print(f"##### {path.name}: {status} in {secs:.1f}s", flush=True)
    return {"script": path.name, "status": status, "seconds": round(secs, 1)}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return None if math.isnan(v) else float(v)


def verdict(row: dict[str, Any]) -> bool | None:
    """PASS/FAIL of one row: an explicit ``pass`` wins; else parse ``goal``.

    A goal with an ``x`` suffix or no unit (``<= 1.5x``, ``>= 0.70``) is checked against the ratio; a
    goal with a unit (``>= 50 MB/s``) against the value.
    """
    if isinstance(row.get("pass"), bool):
        return bool(row["pass"])
    m = _GOAL.match(str(row.get("goal") or ""))
    if not m:
        return None
    op, limit, unit = m.group(1), float(m.group(2)), m.group(3)
    subject = _num(row.get("ratio")) if unit in {"", "x", "×"} else _num(row.get("value"))
    if subject is None:
        return None
    return {"<=": subject <= limit, "≤": subject <= limit, ">=": subject >= limit, "≥": subject >= limit,
            "<": subject < limit, ">": subject > limit}[op]


def collect(areas_since: float | None) -> list[dict[str, Any]]:
    """Rows of every results/<area>.json (written after ``areas_since`` if given), tagged with area and verdict."""
    rows: list[dict[str, Any]] = []
    for f in sorted(RESULTS.glob("*.json")):
        if f.name == "summary.json" or (areas_since is not None and f.stat().st_mtime < areas_since):
            continue
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            print(f"warning: cannot read {f}: {exc}", file=sys.stderr)
            continue
        if not isinstance(data, dict):
            continue
        src_rows = data.get("rows")
        if not isinstance(src_rows, list):
            print(f"warning: {f.name} has no 'rows' list (write it with _common.report); not tabulated",
                  file=sys.stderr)
            continue
        for r in src_rows:
            row = dict(r)
            row["area"] = data.get("area", f.stem)
            row["pass"] = verdict(r)
            row["measured_at"] = data.get("time")
            rows.append(row)
    return rows


def _fmt(v: Any, width: int, prec: int = 2) -> str:
    n = _num(v)
    if n is None:
        return f"{'-':>{width}}"
    if abs(n) >= 1e5:
        return f"{n:>{width}.3g}"
    return f"{n:>{width}.{prec}f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\n" + "=" * 124)
    print(f"{'area':10} {'benchmark':60} {'value':>11} {'unit':4} {'baseline':>11} {'ratio':>7}  {'goal':16} result")
    print("-" * 124)
    for r in rows:
        res = {True: "PASS", False: "FAIL", None: "-"}[r.get("pass")]
        print(f"{r['area'][:10]:10} {str(r['name'])[:60]:60} {_fmt(r.get('value'), 11)} {str(r.get('unit', ''))[:4]:4}"
              f" {_fmt(r.get('baseline'), 11)} {_fmt(r.get('ratio'), 7)}  {str(r.get('goal') or '')[:16]:16} {res}")
    print("=" * 124)
    graded = [r for r in rows if r.get("pass") is not None]
    print(f"goals: {sum(1 for r in graded if r['pass'])}/{len(graded)} met")


def compare(rows: list[dict[str, Any]], old_path: Path) -> None:
    old = json.loads(old_path.read_text())
    by_key = {(r["area"], r["name"]): r for r in old.get("rows", [])}
    print(f"\nCompared with {old_path} ({old.get('time', '?')}, machine {old.get('machine', {})}):")
    print(f"{'area':10} {'benchmark':60} {'old ratio':>9} {'new ratio':>9} {'old value':>11} {'new value':>11}"
          f" {'value Δ':>8}")
    seen = set()
    for r in rows:
        key = (r["area"], r["name"])
        seen.add(key)
        o = by_key.get(key)
        if o is None:
            print(f"{r['area'][:10]:10} {str(r['name'])[:60]:60} {'(new)':>9}")
            continue
        ov, nv = _num(o.get("value")), _num(r.get("value"))
        delta = f"{(nv - ov) / ov * 100:+7.1f}%" if ov and nv is not None else f"{'-':>8}"
        flag = ""
        if o.get("pass") is True and r.get("pass") is False:
            flag = "  <- now failing"
        elif o.get("pass") is False and r.get("pass") is True:
            flag = "  <- now passing"
        print(f"{r['area'][:10]:10} {str(r['name'])[:60]:60} {_fmt(o.get('ratio'), 9)} {_fmt(r.get('ratio'), 9)}"
              f" {_fmt(ov, 11)} {_fmt(nv, 11)} {delta}{flag}")
    for key in by_key.keys() - seen:
        print(f"{key[0][:10]:10} {str(key[1])[:60]:60} (missing from this run)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated areas (bench_<area>.py) to run")
    ap.add_argument("--skip", default="", help="comma-separated areas to skip")
    ap.add_argument("--compare", type=Path, help="an earlier summary.json to diff against")
    ap.add_argument("--no-run", action="store_true", help="do not run anything; tabulate the existing results")
    ap.add_argument("--timeout", type=float, default=240.0, help="per-script timeout in seconds (default 240)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    ap.add_argument("--out", type=Path, default=RESULTS / "summary.json")
    args = ap.parse_args(argv)

    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    RESULTS.mkdir(exist_ok=True)
    started = time.time()
    scripts: list[dict[str, Any]] = []
    if not args.no_run:
        for path in discover(only, skip):
            scripts.append(run_script(path, max(args.timeout, _SLOW.get(path.name, 0.0))))
    rows = collect(None if args.no_run else started - 1)
    if only is not None and args.no_run:
        rows = [r for r in rows if r["area"] in only]
    print_table(rows)
    for s in scripts:
        if s["status"] != "ok":
            print(f"!! {s['script']}: {s['status']}")
    summary = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), "scripts": scripts, "rows": rows}
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    if args.compare is not None:
        compare(rows, args.compare)
    failed_scripts = any(s["status"] != "ok" for s in scripts)
    missed = any(r.get("pass") is False for r in rows)
    return 1 if failed_scripts or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
