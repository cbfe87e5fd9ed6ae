# The two commands of the README. Both do all set-up first (Debian packages, venv, Collector build, browser bundle).
.PHONY: setup demo test bench lint
setup:
	scripts/setup.sh
demo: setup
	.venv/bin/agentpress-otel demo
test:
	scripts/test.sh
bench: setup
	.venv/bin/python benchmarks/run.py
lint: setup
	.venv/bin/ruff check src tests benchmarks && .venv/bin/mypy
