"""The browser package installed the way docs/browser.md documents (an ``npm pack`` tarball, with the npm the
set-up uses) into a Vite app, bundled by Vite (pinned, from the npm registry), served, loaded in headless
Chromium, and its span received by ``agentpress-otel stack up --cors-origin <the page's origin>`` (our Collector,
shipped config) and written by its Tempo stand-in.

Before the package was publishable (``npm install ../browser`` made a symlink with npm 11), Vite could not
resolve ``@opentelemetry/api`` from the linked sources and the build failed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentpress_otel._harness._proc import ComponentMissing, ManagedProcess, find_binary, free_port, http_ok, wait_until
from agentpress_otel._harness.collector import Span, ensure_collector_binary, read_spans
from conftest import need  # type: ignore[import-not-found]  # tests/ is on sys.path under pytest
from harness import REPO_ROOT

pytestmark = pytest.mark.integration

BROWSER_DIR = REPO_ROOT / "browser"
VITE_APP = BROWSER_DIR / "e2e" / "vite-app"
NPM_ENV = {"npm_config_fund": "false", "npm_config_audit": "false", "npm_config_update_notifier": "false",
           "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}


def _tools() -> tuple[str, str, str]:
    node, npm = find_binary("node"), find_binary("npm")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        raise ComponentMissing("browser/node_modules missing: run scripts/setup-browser.sh")
    for cand in ("/usr/bin/chromium", shutil.which("chromium")):
        if cand and Path(cand).is_file():
            return node, npm, cand
    raise ComponentMissing("chromium not installed: apt-get install -y chromium")


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> str:
    res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
                         env={**os.environ, **NPM_ENV})
    assert res.returncode == 0, f"{' '.join(argv)} failed in {cwd}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def _documented_install() -> str:
    doc = (REPO_ROOT / "docs" / "browser.md").read_text()
    m = re.search(r"<!-- install-tarball:begin.*?-->\s*```bash\n(.*?)```\s*<!-- install-tarball:end -->", doc, re.S)
    assert m, "docs/browser.md has no install-tarball block"
    return m.group(1)


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="apotel-vite-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_vite_app_installs_the_packed_package_builds_and_exports_a_span(workdir: Path) -> None:
    """A Vite app installs the packed browser package as docs/browser.md says, builds, and exports a span."""
    node, npm, chromium = need(_tools)
    need(ensure_collector_binary)

    # 1. The install block of docs/browser.md, run as is (only APOTEL points at a folder holding the checkout's
    # browser/), then the app's own dependencies (Vite) and its build.
    block = _documented_install()
    checkout = workdir / "agentpress-otel"
    checkout.mkdir()
    (checkout / "browser").symlink_to(BROWSER_DIR)
    app = workdir / "app"
    shutil.copytree(VITE_APP, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    script = re.sub(r"(?m)^APOTEL=\S+", f"APOTEL={checkout}", block)
    assert f"APOTEL={checkout}" in script, block
    _run(["bash", "-euo", "pipefail", "-c", script], app)
    assert list(checkout.glob("agentpress-otel-browser-*.tgz")), "npm pack wrote no tarball"
    assert "agentpress-otel-browser-" in json.loads((app / "package.json").read_text())["dependencies"][
        "@agentpress-otel/browser"]
    _run([npm, "install"], app)
    installed = app / "node_modules" / "@agentpress-otel" / "browser"
    assert installed.is_dir() and not installed.is_symlink(), "the package must be installed, not linked"
    _run([npm, "run", "build"], app)
    assert list((app / "dist" / "assets").glob("*.js")), "vite produced no bundle"

    # 2. Serve the build, `agentpress-otel stack up --cors-origin <the page's origin>`, open the page in Chromium.
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    state = workdir / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    # Keep every trace and decide fast (the shipped defaults sample and wait longer); the Collector reads these.
    env.update({"APOTEL_STATE_DIR": str(state), "OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100",
                "OTELCOL_TAIL_DECISION_WAIT": "1s", "OTELCOL_BATCH_FLUSH_TIMEOUT": "200ms"})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agentpress_otel", *args], capture_output=True, text=True,
                              env=env, timeout=180, check=False)

    server = ManagedProcess("page", [sys.executable, "-m", "http.server", str(page_port), "--bind", "127.0.0.1",
                                     "--directory", str(app / "dist")], log_dir=workdir)
    try:
        up = cli("stack", "up", "--no-build", "--cors-origin", origin, "--grpc-port=0", "--http-port=0",
                 "--browser-port=0", "--prometheus-port=0", "--alertmanager-port=0")
        assert up.returncode == 0, up.stdout + up.stderr
        comps = {c["name"]: c for c in json.loads((state / "stack.json").read_text())["components"]}
        browser_url, tempo_out = comps["collector"]["browser"], Path(comps["tempo-standin"]["output"])
        server.start(ready=lambda: http_ok(f"{origin}/index.html"), timeout=30)
        cfg = {"executablePath": chromium, "pageUrl": f"{origin}/index.html?collector={browser_url}"}
        out = _run([node, str(BROWSER_DIR / "e2e" / "drive_page.mjs"), json.dumps(cfg)], BROWSER_DIR, timeout=120)
        result = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
        assert result.get("done") == "ok", result

        def loaded() -> list[Span]:
            return [s for s in read_spans(tempo_out) if s.name == "vite-app loaded"]

        wait_until(lambda: bool(loaded()), timeout=60, interval=0.3, what="the Vite app's span at the Tempo stand-in")
    finally:
        server.stop()
        down = cli("stack", "down")
        assert down.returncode == 0, down.stdout + down.stderr
    (span,) = loaded()
    assert span.attributes["app.bundler"] == "vite"
    assert span.resource["service.name"] == "vite-e2e-frontend"
