"""Dramatiq module for test_stop_flush.py: RedisBroker from $STOP_REDIS_URL, instrumented at import.

Each job records a span, a log record and a counter increment, then sleeps so SIGTERM lands mid-task.
"""

from __future__ import annotations

import logging
import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from opentelemetry import metrics, trace

import agentpress_otel

broker = RedisBroker(url=os.environ["STOP_REDIS_URL"])  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
tel = agentpress_otel.instrument(service_name="stop-worker", integrations=("dramatiq", "logging"))
tracer = trace.get_tracer("stop-worker")
jobs = metrics.get_meter("stop-worker").create_counter("stop_worker.jobs")
log = logging.getLogger("stop_worker")


_marks = redis.Redis.from_url(os.environ["STOP_REDIS_URL"])


@dramatiq.actor(queue_name="stop-test", max_retries=0)
def job(i: int) -> None:
    _marks.rpush("stop-started", i)
    with tracer.start_as_current_span("job.inner") as span:
        span.set_attribute("work.i", i)
        time.sleep(float(os.environ.get("STOP_JOB_SLEEP_S", "0.2")))  # still running when SIGTERM arrives
        log.warning("job done %d", i)
    jobs.add(1)
    _marks.rpush("stop-done", i)  # the ground truth: what the app recorded before it stopped
