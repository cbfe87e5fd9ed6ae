"""Dramatiq module for test_failure_fork.py: RedisBroker from $FORK_REDIS_URL, instrumented at import."""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from opentelemetry import metrics, trace

import agentpress_otel

broker = RedisBroker(url=os.environ["FORK_REDIS_URL"])  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
tel = agentpress_otel.instrument(service_name="fork-worker", logs=False, integrations=("dramatiq",))
tracer = trace.get_tracer("fork-worker")
done = metrics.get_meter("fork-worker").create_counter("fork_worker.jobs")


@dramatiq.actor(queue_name="fork-test", max_retries=0)
def work(i: int) -> None:
    with tracer.start_as_current_span("job.work") as span:
        span.set_attribute("job.i", i)
        span.set_attribute("worker.pid", os.getpid())
    done.add(1, {"actor": "work"})
    time.sleep(0.05)  # give the other worker process a chance to take messages
