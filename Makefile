# The two commands of the README. Both do all set-up first (Debian packages, venv, Collector build, browser bundle).
.PHONY: setup demo test bench lint
setup:
	scripts/setup.sh
# The demo needs only Python (telemetry is shown in the terminal): skip the Collector build, apt and npm.
demo:
	APOTEL_SKIP_APT=1 APOTEL_SKIP_COLLECTOR=1 APOTEL_SKIP_BROWSER=1 scripts/setup.sh
	.venv/bin/agentpress-otel demo
test:
	scripts/test.sh
bench: setup
	.venv/bin/python benchmarks/run.py
lint: setup
	.venv/bin/ruff check src tests benchmarks grafana && .venv/bin/mypy
