"""Run the real Alertmanager (Debian's ``prometheus-alertmanager`` or ``bin/alertmanager``) with the shipped config.

The shipped ``stack/alertmanager/alertmanager.yml`` is used as is, except for the two container paths that only
exist in docker-compose: the webhook secret file (``/run/secrets/slack_webhook_url``, replaced by a temp file
holding the URL you pass, e.g. a :class:`~agentpress_otel._harness.slack_stub.SlackStub`) and the templates
directory (replaced by the repo's ``stack/alertmanager/templates``). ``timing`` optionally overrides
``group_wait``/``group_interval``/``repeat_interval`` on every route, for tests that cannot wait minutes; routing,
grouping keys, inhibition, receivers and templates stay as shipped.

Example::

    with SlackStub() as slack, Alertmanager(webhook_url=slack.url) as am:
        am.post_alerts([{"labels": {"alertname": "X", "severity": "critical", "service_name": "api"}}])
        slack.wait_for(1, timeout=30)
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ._proc import REPO_ROOT, ComponentMissing, ManagedProcess, find_binary, free_port, http_ok

CONFIG = REPO_ROOT / "stack" / "alertmanager" / "alertmanager.yml"
TEMPLATES = REPO_ROOT / "stack" / "alertmanager" / "templates"
SECRET_PATH = "/run/secrets/slack_webhook_url"  # noqa: S105 - a path, not a secret
CONTAINER_TEMPLATES = "/etc/alertmanager/templates"
_TIMING_KEYS = ("group_wait", "group_interval", "repeat_interval")


def binary() -> str:
    """Path of the Alertmanager binary (Debian names it ``prometheus-alertmanager``)."""
    for name in ("alertmanager", "prometheus-alertmanager"):
        try:
            return find_binary(name)
        except ComponentMissing:
            continue
    raise ComponentMissing("Alertmanager not found: `apt-get install prometheus-alertmanager` (or put it in bin/)")


def amtool() -> str:
    return find_binary("amtool")


def render_config(*, webhook_file: Path, templates_dir: Path = TEMPLATES,
                  timing: Mapping[str, str] | None = None, source: Path = CONFIG) -> str:
    """The shipped config with the container paths pointed at local files (and optional timing overrides)."""
    text = source.read_text()
    if SECRET_PATH not in text:
        raise ValueError(f"{source} does not read the webhook from {SECRET_PATH}")
    text = text.replace(SECRET_PATH, str(webhook_file)).replace(CONTAINER_TEMPLATES, str(templates_dir))
    if not timing:
        return text
    doc = yaml.safe_load(text)

    def patch(route: dict[str, Any]) -> None:
        for k in _TIMING_KEYS:
            if k in timing and (k in route or route is doc["route"]):
                route[k] = timing[k]
        for child in route.get("routes", []) or []:
            patch(child)

    patch(doc["route"])
    return str(yaml.safe_dump(doc, sort_keys=False))


class Alertmanager:
    """One Alertmanager process on free loopback ports; clustering off (it would bind a fixed port)."""

    def __init__(self, *, webhook_url: str, timing: Mapping[str, str] | None = None,
                 workdir: Path | None = None) -> None:
        self.webhook_url = webhook_url
        self.timing = dict(timing or {})
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="apotel-alertmanager-"))
        self.port = 0
        self.proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Alertmanager:
        exe = binary()
        webhook_file = self.workdir / "slack_webhook_url"
        webhook_file.write_text(self.webhook_url + "\n")
        webhook_file.chmod(0o600)
        cfg = self.workdir / "alertmanager.yml"
        cfg.write_text(render_config(webhook_file=webhook_file, timing=self.timing))
        (self.workdir / "data").mkdir(exist_ok=True)
        self.port = free_port()
        self.proc = ManagedProcess(
            "alertmanager",
            [exe, f"--config.file={cfg}", f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             f"--web.external-url=http://127.0.0.1:{self.port}", "--log.level=debug"],
            log_dir=self.workdir,
        )
        self.proc.start(ready=lambda: http_ok(f"{self.url}/-/ready"), timeout=timeout)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, n: int = 60) -> str:
        return self.proc.log_tail(n) if self.proc else ""

    # -- API v2 ---------------------------------------------------------------------------------
    def post_alerts(self, alerts: Sequence[Mapping[str, Any]], *, resolved: bool = False) -> None:
        """POST alerts like Prometheus does (startsAt = now); ``resolved=True`` sets endsAt in the past."""
        now = datetime.now(UTC)
        body = []
        for a in alerts:
            item: dict[str, Any] = {"labels": dict(a["labels"]), "annotations": dict(a.get("annotations", {})),
                                    "generatorURL": a.get("generatorURL", "http://127.0.0.1:9090/graph")}
            # Prometheus sends startsAt = when the alert started firing (FiredAt), i.e. "now" for a new alert. An
            # older startsAt would make Alertmanager skip group_wait and flush the group on its first alert.
            started = now - timedelta(minutes=1) if resolved else now
            item["startsAt"] = a.get("startsAt", started.isoformat())
            if resolved:
                item["endsAt"] = (now - timedelta(seconds=1)).isoformat()
            else:
                item["endsAt"] = (now + timedelta(hours=1)).isoformat()
            body.append(item)
        req = urllib.request.Request(  # noqa: S310 - loopback http URL we built
            f"{self.url}/api/v2/alerts", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
            if resp.status != 200:
                raise RuntimeError(f"alertmanager refused alerts: {resp.status}")

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        q = "&".join(f"{k}={v}" for k, v in filters.items())
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{q}", timeout=5) as resp:  # noqa: S310
            data: list[dict[str, Any]] = json.loads(resp.read())
            return data
