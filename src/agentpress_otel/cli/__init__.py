"""The ``agentpress-otel`` command: ``demo``, ``doctor`` and ``stack``.

Example::

    agentpress-otel demo --threads 3
    agentpress-otel doctor --endpoint http://localhost:4317
    agentpress-otel stack up
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``agentpress-otel`` (exposed for docs and tests).

    Example::

        build_parser().parse_args(["demo", "--threads", "3"])
    """
    ap = argparse.ArgumentParser(
        prog="agentpress-otel",
        description="OpenTelemetry for AI-agent backends: a demo, a configuration doctor and a local stack.",
    )
    sub = ap.add_subparsers(dest="command", metavar="{demo,doctor,stack}")

    demo = sub.add_parser("demo", help="run an instrumented AgentPress-shaped backend and show its telemetry")
    demo.add_argument("--threads", type=int, default=3, help="concurrent agent threads to drive (default 3)")
    demo.add_argument("--endpoint", default=None,
                      help="OTLP endpoint of a Collector (default: OTEL_EXPORTER_OTLP_ENDPOINT, else in-memory)")
    demo.add_argument("--protocol", choices=("grpc", "http/protobuf"), default=None,
                      help="OTLP protocol (default: http/protobuf for port 4318, else grpc)")
    demo.add_argument("--seed", type=int, default=7, help="workload seed (default 7)")
    demo.add_argument("--worker", choices=("auto", "dramatiq", "asyncio"), default="auto",
                      help="background worker: Dramatiq (StubBroker) when its integration is available, else asyncio")
    demo.add_argument("--json-summary", metavar="PATH", default=None,
                      help="also write what was measured and what the local LLM server sent, as JSON")

    doctor = sub.add_parser("doctor", help="show the effective configuration and check the OTLP endpoint")
    doctor.add_argument("--endpoint", default=None, help="OTLP endpoint to check (default: from configuration)")
    doctor.add_argument("--protocol", choices=("grpc", "http/protobuf"), default=None)
    doctor.add_argument("--timeout", type=float, default=3.0, help="seconds per export check (default 3)")

    stack = sub.add_parser("stack", help="build and run our Collector (+ Prometheus, Alertmanager) locally")
    stack.add_argument("action", choices=("up", "down", "status"))
    stack.add_argument("--no-build", action="store_true",
                       help="never build the Collector: use --collector, AGENTPRESS_OTEL_COLLECTOR_BIN or the cache")
    stack.add_argument("--collector", metavar="PATH", default=None,
                       help="an otelcol-apotel binary to run (default: AGENTPRESS_OTEL_COLLECTOR_BIN, else the build "
                            "in ~/.cache/agentpress-otel/, made with Go on first use)")
    for name, default in (("grpc", 4317), ("http", 4318), ("browser", 4319), ("prometheus", 9090),
                          ("alertmanager", 9093)):
        stack.add_argument(f"--{name}-port", type=int, default=None, metavar="PORT",
                           help=f"{name} port (default {default}, a free one when taken; 0: any free port)")
    stack.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="browser origin allowed to send OTLP to the browser port (repeatable; "
                            "default http://localhost:5173)")
    stack.add_argument("--hostmetrics", action="store_true",
                       help="also run the host-metrics agent (CPU, memory, disk, network of this machine)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentpress-otel`` console script.

    Example::

        raise SystemExit(main(["doctor"]))
    """
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from agentpress_otel.cli import demo

        if args.threads < 1:
            print("agentpress-otel demo: --threads must be >= 1", file=sys.stderr)
            return 2
        return demo.run(threads=args.threads, endpoint=args.endpoint, seed=args.seed,
                        json_summary=args.json_summary, protocol=args.protocol, worker=args.worker)
    if args.command == "doctor":
        from agentpress_otel.cli import doctor

        return doctor.run(endpoint=args.endpoint, protocol=args.protocol, timeout_s=args.timeout)
    if args.command == "stack":
        from agentpress_otel.cli import stack

        ports = {name: getattr(args, f"{name}_port") for name in stack.DEFAULT_PORTS}
        return stack.run(args.action, build=not args.no_build, collector=args.collector, ports=ports,
                         cors_origins=args.cors_origin, hostmetrics=args.hostmetrics)
    build_parser().print_help()
    return 2
