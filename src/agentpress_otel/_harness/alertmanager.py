"""Run the real Alertmanager (Debian's ``prometheus-alertmanager`` or ``bin/alertmanager``) with the shipped config.

The shipped ``stack/alertmanager/alertmanager.yml`` is used as is, except for the container paths that only
exist in docker-compose: the two webhook secret files (``/run/secrets/slack_webhook_url_critical`` and
``/run/secrets/slack_webhook_url_warning``, one Slack incoming webhook per severity channel, replaced by temp files
holding the URLs you pass, e.g. of a :class:`~agentpress_otel._harness.slack_stub.SlackStub`) and the templates
directory (replaced by the repo's ``stack/alertmanager/templates``). ``timing`` optionally overrides
``group_wait``/``group_interval``/``repeat_interval`` on every route, for tests that cannot wait minutes; routing,
grouping keys, inhibition, receivers and templates stay as shipped.

Example::

    with SlackStub() as slack, Alertmanager(webhook_url=slack.url) as am:
        am.post_alerts([{"labels": {"alertname": "X", "severity": "critical", "service_name": "api"}}])
        slack.wait_for(1, timeout=30)

    # one webhook per severity, as in production:
    Alertmanager(webhook_urls={"critical": crit.url, "warning": warn.url})
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

from agentpress_otel._assets import deploy_file

from ._proc import ComponentMissing, ManagedProcess, find_binary, free_port, http_ok, loopback_url

CONFIG = deploy_file("stack/alertmanager/alertmanager.yml")
TEMPLATES = deploy_file("stack/alertmanager/templates")
# severity -> the compose secret file its Slack receiver reads (api_url_file)
SECRET_PATHS = {
    "critical": "/run/secrets/slack_webhook_url_critical",
    "warning": "/run/secrets/slack_webhook_url_warning",
}
CONTAINER_TEMPLATES = "/etc/alertmanager/templates"
_TIMING_KEYS = ("group_wait", "group_interval", "repeat_interval")


def binary() -> str:
    """Path of the Alertmanager binary (Debian names it ``prometheus-alertmanager``)."""
    for name in ("alertmanager", "prometheus-alertmanager"):
        try:
            return find_binary(name)
        except ComponentMissing:
            continue
    raise ComponentMissing("Alertmanager not found: `apt-get install prometheus-alertmanager`")


def amtool() -> str:
    return find_binary("amtool")


def render_config(*, webhook_file: Path | None = None, webhook_files: Mapping[str, Path] | None = None,
                  templates_dir: Path = TEMPLATES, timing: Mapping[str, str] | None = None,
                  source: Path = CONFIG) -> str:
    """The shipped config with the container paths pointed at local files (and optional timing overrides).

    ``webhook_files`` maps a severity (``critical``, ``warning``) to the file holding its webhook URL;
    ``webhook_file`` is the default for severities not in it.
    """
    files = {sev: webhook_file for sev in SECRET_PATHS}
    files.update(webhook_files or {})
    text = source.read_text()
    for sev, secret in SECRET_PATHS.items():
        if secret not in text:
            raise ValueError(f"{source} does not read the {sev} webhook from {secret}")
        path = files.get(sev)
        if path is None:
            raise ValueError(f"no webhook file for severity {sev!r}")
        text = text.replace(secret, str(path))
    text = text.replace(CONTAINER_TEMPLATES, str(templates_dir))
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

    def __init__(self, *, webhook_url: str | None = None, webhook_urls: Mapping[str, str] | None = None,
                 timing: Mapping[str, str] | None = None, workdir: Path | None = None,
                 port: int | None = None) -> None:
        """``webhook_url`` serves every severity unless ``webhook_urls`` (severity -> URL) names its own;
        ``port`` defaults to a free loopback port."""
        urls = {sev: webhook_url for sev in SECRET_PATHS if webhook_url is not None}
        urls.update(webhook_urls or {})
        missing = set(SECRET_PATHS) - set(urls)
        if missing:
            raise ValueError(f"no webhook URL for severities {sorted(missing)}")
        self.webhook_urls: dict[str, str] = {sev: str(u) for sev, u in urls.items()}
        self.webhook_url = webhook_url
        self.timing = dict(timing or {})
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="apotel-alertmanager-"))
        self.port = port or 0
        self.proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return loopback_url(self.port)

    def start(self, timeout: float = 30.0) -> Alertmanager:
        exe = binary()
        files: dict[str, Path] = {}
        for sev, url in self.webhook_urls.items():
            files[sev] = self.workdir / f"slack_webhook_url_{sev}"
            files[sev].write_text(url + "\n")
            files[sev].chmod(0o600)
        cfg = self.workdir / "alertmanager.yml"
        cfg.write_text(render_config(webhook_files=files, timing=self.timing))
        (self.workdir / "data").mkdir(exist_ok=True)
        self.port = self.port or free_port()
        self.proc = ManagedProcess(
            "alertmanager",
            [exe, f"--config.file={cfg}", f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             f"--web.external-url={self.url}", "--log.level=debug"],
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
