"""Cost on the caller's thread of the in-process Slack handler, vs a do-nothing handler in the same run.

What an app pays per ``logger.error(...)`` / ``logger.exception(...)`` once the Slack handler is attached:

* ``repeat``: the same error again within the dedup window (the storm case: fingerprint + counter bump);
* ``distinct``: a new fingerprint each time with the rate limit exhausted (fingerprint + message capture +
  a dropped-count), the worst case the caller can hit;
* baseline: the same logging call into a handler whose ``emit`` does nothing.

The webhook is a local Slack stand-in; nothing here waits on it (sending is on the handler's thread). Run:
``.venv/bin/python benchmarks/bench_alerts.py`` (< 20 s). Writes benchmarks/results/alerts.json.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import per_call_us, report
from agentpress_otel._harness.slack_stub import SlackStub
from agentpress_otel.integrations.slack import SlackAlertHandler

N = 5000


class _Nothing(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        return


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    lg = logging.getLogger(f"bench.alerts.{name}")
    lg.propagate = False
    lg.handlers[:] = [handler]
    lg.setLevel(logging.ERROR)
    return lg


def main() -> None:
    try:
        raise ValueError("upstream refused the request")
    except ValueError:
        exc_info = sys.exc_info()
    rows = []
    with SlackStub() as stub:
        base = _logger("base", _Nothing())
        slack = SlackAlertHandler(webhook_url=stub.url, service="bench", dedup_window_s=3600, burst=1,
                                  rate_per_minute=0.0)
        ours = _logger("slack", slack)
        cases = {
            "logger.error, repeat (deduped)": (
                lambda: base.error("agent step %s failed", "x"),
                lambda: ours.error("agent step %s failed", "x"),
            ),
            "logger.exception, repeat (deduped)": (
                lambda: base.error("agent step failed", exc_info=exc_info),
                lambda: ours.error("agent step failed", exc_info=exc_info),
            ),
        }
        for name, (b, o) in cases.items():
            b_us = per_call_us(b, n=N)
            o_us = per_call_us(o, n=N)
            rows.append({"name": name, "value": o_us, "unit": "us", "baseline": b_us, "ratio": o_us / b_us,
                         "goal": "< 3x a no-op handler"})

        # Distinct fingerprints (new logger name each call) with the rate limit spent: capture + drop count.
        counter = iter(range(10**9))

        def distinct(lg_prefix: str, handler: logging.Handler) -> None:
            lg = logging.getLogger(f"bench.alerts.{lg_prefix}.{next(counter) % 50_000}")
            lg.propagate = False
            if not lg.handlers:
                lg.addHandler(handler)
            lg.error("agent step failed", exc_info=exc_info)

        nothing = _Nothing()
        b_us = per_call_us(lambda: distinct("dbase", nothing), n=2000, warmup=100)
        o_us = per_call_us(lambda: distinct("dslack", slack), n=2000, warmup=100)
        rows.append({"name": "logger.exception, distinct errors (rate-limited)", "value": o_us, "unit": "us",
                     "baseline": b_us, "ratio": o_us / b_us, "goal": "bounded; no network on caller"})
        slack.close()
    report("alerts", rows)


if __name__ == "__main__":
    main()
