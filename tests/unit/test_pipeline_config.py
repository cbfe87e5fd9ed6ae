"""Structural checks of the shipped Collector config, builder manifest, Prometheus config and docker-compose.yml.

Pure Python, no binaries: these run everywhere and catch the mistakes `otelcol validate` cannot (ordering,
fan-out topology, secrets in defaults, drift between the compose file and the configs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.dashboards import dashboard_exprs

ROOT = Path(__file__).resolve().parents[2]
CC = ROOT / "collector-config"
CONFIG = CC / "config.yaml"
MANIFEST = CC / "builder-config.yaml"
SHIPPED_CONFIGS = [
    CONFIG,
    CC / "agent.yaml",
    CC / "hostmetrics.yaml",
    CC / "testing" / "standin-traces.yaml",
    CC / "testing" / "standin-logs.yaml",
]
COMPOSE = ROOT / "docker-compose.yml"
PROM = ROOT / "stack" / "prometheus" / "prometheus.yml"

KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
KIND_SUFFIX = {
    "receivers": "receiver",
    "processors": "processor",
    "exporters": "exporter",
    "connectors": "connector",
    "extensions": "extension",
}
# Type names that do not follow "<module name without kind suffix> == <type without underscores>".
TYPE_ALIASES = {"otlp_grpc": "otlp"}
# Old type names that 0.159 still accepts but logs as deprecated on every start ("hostmetrics" alias is deprecated;
# use "host_metrics"), or removed ones. tests/integration/test_pipeline_validate.py starts every shipped config and
# fails on any deprecation warning; this is the offline first line.
DEPRECATED = {
    "exporters": {"otlp", "otlphttp", "prometheusremotewrite", "logging", "loki", "loadbalancing"},
    "connectors": {"spanmetrics", "servicegraph"},
    "receivers": {"hostmetrics"},
    "processors": {"memorylimiter", "tailsampling", "resourcedetection"},
}
ENV_REF = re.compile(r"\$\{env:([A-Za-z0-9_]+)(:-([^}]*))?\}")
ENV_DEFAULT = re.compile(r"\$\{\w+:-([^}]+)\}")  # compose's ${VAR:-default}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def cfg() -> dict[str, Any]:
    data: dict[str, Any] = load(CONFIG)
    return data


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = load(MANIFEST)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load(COMPOSE)
    return data


def ctype(component_id: str) -> str:
    """`otlp_grpc/tempo` -> `otlp_grpc`."""
    return component_id.split("/", 1)[0]


def manifest_types(manifest: dict[str, Any]) -> dict[str, set[str]]:
    """Normalised component names per kind, from the module paths in the manifest."""
    out: dict[str, set[str]] = {}
    for kind in KINDS:
        names = set()
        for entry in manifest.get(kind, []):
            module = entry["gomod"].split()[0].rstrip("/").split("/")[-1]
            names.add(module.removesuffix(KIND_SUFFIX[kind]))
        out[kind] = names
    return out


def norm(kind: str, type_name: str) -> str:
    """Component type -> module-name stem: `tail_sampling` -> `tailsampling` (module tailsamplingprocessor)."""
    del kind  # same rule for every kind
    return TYPE_ALIASES.get(type_name, type_name).replace("_", "")


# ------------------------------------------------------------------------------------------------ collector config


def test_every_pipeline_component_is_defined(cfg: dict[str, Any]) -> None:
    """Every component a Collector pipeline names is defined in the config."""
    for name, pipe in cfg["service"]["pipelines"].items():
        for key, kinds in (
            ("receivers", ("receivers", "connectors")),
            ("processors", ("processors",)),
            ("exporters", ("exporters", "connectors")),
        ):
            for comp in pipe.get(key, []):
                assert any(comp in (cfg.get(k) or {}) for k in kinds), f"{name}: {key} {comp!r} is not defined"
    for ext in cfg["service"]["extensions"]:
        assert ext in cfg["extensions"], f"extension {ext!r} not defined"


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_every_component_type_is_in_the_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Every component type the shipped configs use is built into our Collector."""
    types = manifest_types(manifest)
    conf = load(path)
    for kind in KINDS:
        for comp in conf.get(kind) or {}:
            assert norm(kind, ctype(comp)) in types[kind], f"{path.name}: {kind} {comp!r} has no module in the manifest"


def test_manifest_has_exactly_the_components_used(manifest: dict[str, Any]) -> None:
    """No dead weight: every module in the manifest is defined by at least one shipped config."""
    used: dict[str, set[str]] = {k: set() for k in KINDS}
    for path in SHIPPED_CONFIGS:
        conf = load(path)
        for kind in KINDS:
            used[kind] |= {norm(kind, ctype(c)) for c in conf.get(kind) or {}}
    for kind, names in manifest_types(manifest).items():
        assert names <= used[kind], f"{kind} in manifest but unused: {sorted(names - used[kind])}"


def test_manifest_is_pinned_to_one_release(manifest: dict[str, Any], compose: dict[str, Any]) -> None:
    """All manifest modules and the compose Collector image are pinned to one release."""
    core = manifest["dist"]["version"]
    stable = None
    for kind in (*KINDS, "providers"):
        for entry in manifest.get(kind, []):
            module, version = entry["gomod"].split()
            if kind == "providers":
                stable = stable or version
                assert version == stable, entry
                assert version.startswith("v1."), entry
            else:
                assert version == f"v{core}", f"{module} at {version}, expected v{core}"
    _tel_module, tel_version = manifest["telemetry"]["gomod"].split()
    assert tel_version == f"v{core}"
    # Users (compose image) and tests (our build) run the same component versions.
    image = compose["services"]["otel-collector"]["image"]
    assert image == f"otel/opentelemetry-collector-contrib:{core}"


def test_no_deprecated_component_aliases() -> None:
    """The shipped configs use no deprecated component types."""
    for path in SHIPPED_CONFIGS:
        conf = load(path)
        for kind, bad in DEPRECATED.items():
            for comp in conf.get(kind) or {}:
                assert ctype(comp) not in bad, f"{path.name}: deprecated {kind[:-1]} type {ctype(comp)!r}"
        for comp in conf.get("processors") or {}:
            # One exception: right after tail_sampling (which releases every trace on its own), so the persistent
            # queue gets one write per batch instead of one per trace (issue 17).
            if ctype(comp) == "batch":
                users = [n for n, p in conf["service"]["pipelines"].items() if comp in p.get("processors", [])]
                assert users and all(
                    conf["service"]["pipelines"][n]["processors"][-2:] == ["tail_sampling", comp] for n in users
                ), f"{path.name}: batch processor only directly after tail_sampling; else use sending_queue.batch"


def test_memory_limiter_first_in_every_pipeline() -> None:
    """memory_limiter is the first processor in every pipeline."""
    for path in (CONFIG, CC / "hostmetrics.yaml"):
        for name, pipe in load(path)["service"]["pipelines"].items():
            procs = pipe.get("processors", [])
            assert procs, f"{path.name}:{name}: no processors"
            assert ctype(procs[0]) == "memory_limiter", f"{path.name}:{name}: memory_limiter must be first"


def _downstream(cfg: dict[str, Any], start: str) -> set[str]:
    """Pipelines reachable from `start` through connectors (including `start`)."""
    pipes = cfg["service"]["pipelines"]
    connectors = set(cfg.get("connectors") or {})
    seen, todo = {start}, [start]
    while todo:
        cur = todo.pop()
        for conn in set(pipes[cur].get("exporters", [])) & connectors:
            for name, p in pipes.items():
                if conn in p.get("receivers", []) and name not in seen:
                    seen.add(name)
                    todo.append(name)
    return seen


def test_span_metrics_computed_before_tail_sampling(cfg: dict[str, Any]) -> None:
    """Span metrics are computed from all traces, before tail sampling."""
    pipes = cfg["service"]["pipelines"]
    sampled = [n for n, p in pipes.items() if any(ctype(x) == "tail_sampling" for x in p.get("processors", []))]
    assert sampled, "tail_sampling must be used"
    for name in sampled:
        for down in _downstream(cfg, name):
            assert not any(ctype(e) == "span_metrics" for e in pipes[down].get("exporters", [])), (
                f"span_metrics is fed from {down}, downstream of tail sampling in {name}"
            )
    feeders = [n for n, p in pipes.items() if any(ctype(e) == "span_metrics" for e in p.get("exporters", []))]
    assert feeders, "span_metrics connector must be fed"
    for f in feeders:
        assert "otlp" in pipes[f]["receivers"], f"{f} must receive the unsampled OTLP traces"
        # ...and the same pipeline fans out (via a connector) to the tail-sampling pipeline.
        assert set(sampled) & _downstream(cfg, f), f"{f} must also feed tail sampling"


def test_service_graph_fed_before_sampling_into_the_metrics_pipeline(cfg: dict[str, Any]) -> None:
    """Grafana's Tempo service map reads traces_service_graph_* from Prometheus: something must produce them."""
    pipes = cfg["service"]["pipelines"]
    graphs = [c for c in cfg.get("connectors") or {} if ctype(c) == "service_graph"]
    assert graphs, "no service_graph connector: the Tempo service map in Grafana would be empty"
    for g in graphs:
        feeders = [n for n, p in pipes.items() if g in p.get("exporters", [])]
        assert feeders and all("otlp" in pipes[f]["receivers"] for f in feeders), feeders
        for f in feeders:  # the unsampled pipeline: no tail sampling on the way
            assert not any(ctype(x) == "tail_sampling" for x in pipes[f].get("processors", [])), f
        consumers = [n for n, p in pipes.items() if g in p.get("receivers", [])]
        assert consumers and all(n.split("/")[0] == "metrics" for n in consumers), consumers
        assert all("prometheus_remote_write" in pipes[n]["exporters"] for n in consumers)


def test_every_connector_is_both_exporter_and_receiver(cfg: dict[str, Any]) -> None:
    """Every connector is both exported to and received from."""
    pipes = cfg["service"]["pipelines"].values()
    for conn in cfg.get("connectors") or {}:
        assert any(conn in p.get("exporters", []) for p in pipes), f"{conn} never exported to"
        assert any(conn in p.get("receivers", []) for p in pipes), f"{conn} never received from"


def test_tail_sampling_policies(cfg: dict[str, Any]) -> None:
    """Tail sampling keeps errors, slow and GenAI traces, and samples the rest by an env percentage."""
    pol = {p["type"]: p for p in cfg["processors"]["tail_sampling"]["policies"]}
    assert pol["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert "latency" in pol
    assert "gen_ai.operation.name" in " ".join(pol["ottl_condition"]["ottl_condition"]["span"])
    assert "${env:OTELCOL_TAIL_SAMPLING_PERCENTAGE" in str(pol["probabilistic"]["probabilistic"]["sampling_percentage"])


def test_exporter_queues_are_persistent_and_retry(cfg: dict[str, Any]) -> None:
    """OTLP exporters use persistent file-storage queues and retry, as does remote write."""
    exts = set(cfg["service"]["extensions"])
    for name, exp in cfg["exporters"].items():
        if ctype(name) in {"otlp_grpc", "otlp_http"}:
            storage = exp["sending_queue"]["storage"]
            assert storage in exts, name
            assert ctype(storage) == "file_storage", name
            assert exp["retry_on_failure"]["enabled"] is True, name
    assert cfg["exporters"]["prometheus_remote_write"]["retry_on_failure"]["enabled"] is True


def test_redaction_runs_on_traces_and_logs_without_masking_token_counts(cfg: dict[str, Any]) -> None:
    """The Collector redacts traces and logs, masking credentials but not GenAI token counts."""
    for name, pipe in cfg["service"]["pipelines"].items():
        if name.startswith(("traces/in", "traces/browser", "logs")):
            assert "redaction" in pipe["processors"], name
    # Whole-word key matching: GenAI token attributes must survive, credentials must not.
    (pattern,) = cfg["processors"]["redaction"]["blocked_key_patterns"]
    rx = re.compile(pattern.replace("(?i)", ""), re.IGNORECASE)
    for key in (
        "password",
        "db.password",
        "http.request.header.authorization",
        "openai.api_key",
        "x-api-key",
        "user.access_token",
        "client_secret",
    ):
        assert rx.search(key), key
    for key in ("gen_ai.usage.input_tokens", "gen_ai.token.type", "gen_ai.usage.output_tokens", "agentpress.thread.id"):
        assert not rx.search(key), key
    values = [re.compile(v) for v in cfg["processors"]["redaction"]["blocked_values"]]
    assert any(v.search("key=sk-proj-abcdefghijklmnopqrstuvwxyz012345") for v in values)


def test_browser_receiver_is_locked_down(cfg: dict[str, Any]) -> None:
    """The browser receiver is HTTP only with a CORS allowlist, a safe default and a size limit."""
    http = cfg["receivers"]["otlp/browser"]["protocols"]["http"]
    assert set(cfg["receivers"]["otlp/browser"]["protocols"]) == {"http"}
    cors = http["cors"]
    assert sorted(cors["allowed_headers"]) == ["baggage", "content-type", "traceparent", "tracestate"]
    origins = str(cors["allowed_origins"])
    m = ENV_REF.search(origins)
    assert m, origins
    assert m.group(3), "CORS origins need a safe default"
    assert "*" not in m.group(3), origins
    assert "*" not in origins
    limit = ENV_REF.search(str(http["max_request_body_size"]))
    assert limit
    assert int(limit.group(3)) <= 1024 * 1024
    # Its own pipelines, never mixed into the backend ones.
    for name, pipe in cfg["service"]["pipelines"].items():
        if "otlp/browser" in pipe.get("receivers", []):
            assert name.endswith("/browser"), name
            assert pipe["receivers"] == ["otlp/browser"], name


def test_no_bare_star_cors_anywhere(compose: dict[str, Any]) -> None:
    """No shipped config allows a ``*`` CORS origin."""
    for path in SHIPPED_CONFIGS:
        text = path.read_text()
        assert not re.search(r"allowed_origins:.*[\"'\[ ,]\*", text), path
    env = compose["services"]["otel-collector"]["environment"]
    assert "*" not in env["OTELCOL_BROWSER_CORS_ORIGINS"]


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_every_env_reference_has_a_default(path: Path) -> None:
    """Every env reference in the shipped configs has a default."""
    text = path.read_text()
    refs = ENV_REF.findall(text)
    assert refs or path.name == "hostmetrics.yaml"
    for var, default, _ in refs:
        assert default, f"{path.name}: ${{env:{var}}} has no default"
    # Nothing that looks like an env reference slipped through unparsed (e.g. missing "env:").
    assert len(re.findall(r"\$\{", text)) == len(refs)


def test_endpoint_defaults_match_compose_services(cfg: dict[str, Any], compose: dict[str, Any]) -> None:
    """The Collector's default endpoints match the compose services and their ports."""
    services = compose["services"]
    text = CONFIG.read_text()
    defaults = {var: d for var, _, d in ENV_REF.findall(text)}
    assert defaults["OTELCOL_TEMPO_ENDPOINT"] == "tempo:4317"
    assert defaults["OTELCOL_LOKI_ENDPOINT"] == "http://loki:3100/otlp"
    assert defaults["OTELCOL_PROMETHEUS_RW_ENDPOINT"] == "http://prometheus:9090/api/v1/write"
    for svc in ("tempo", "loki", "prometheus", "otel-collector"):
        assert svc in services
    tempo = load(ROOT / "stack" / "tempo" / "tempo.yaml")
    assert tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    loki = load(ROOT / "stack" / "loki" / "loki.yaml")
    assert loki["server"]["http_listen_port"] == 3100
    # Published Collector ports are exactly the receiver default ports.
    published = {p.split(":")[-1] for p in services["otel-collector"]["ports"]}
    receiver_ports = {
        defaults[v].rsplit(":", 1)[1]
        for v in ("OTELCOL_OTLP_GRPC_ENDPOINT", "OTELCOL_OTLP_HTTP_ENDPOINT", "OTELCOL_BROWSER_ENDPOINT")
    }
    assert published == receiver_ports
    # Prometheus scrapes the Collector's self-metrics port.
    prom = load(PROM)
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["otel-collector"]["static_configs"][0]["targets"] == [
        f"otel-collector:{defaults['OTELCOL_METRICS_PORT']}"
    ]


# ------------------------------------------------------------------------------------------------ prometheus.yml


def test_prometheus_config_structure() -> None:
    """The Prometheus config loads the rules directory and points at Alertmanager."""
    prom = load(PROM)
    assert prom["rule_files"] == ["rules/*.yml"]
    assert (PROM.parent / "rules").is_dir()
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]
    assert "otlp" not in prom, "Prometheus 2.42 rejects the otlp block"


def test_prometheus_harness_rewrites_only_targets() -> None:
    """The Prometheus test harness changes only targets, paths and timings of the shipped config."""
    from agentpress_otel._harness.prometheus import render_config

    shipped = load(PROM)
    out = yaml.safe_load(render_config(targets={"otel-collector:8888": "127.0.0.1:1"}))
    assert out["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:1"]
    assert [j["job_name"] for j in out["scrape_configs"]] == [j["job_name"] for j in shipped["scrape_configs"]]
    assert out["rule_files"] == [str(PROM.parent / "rules" / "*.yml")]
    assert out["global"] == shipped["global"]
    assert out["alerting"] == shipped["alerting"]
    fast = yaml.safe_load(render_config(targets={}, scrape_interval="1s"))
    assert fast["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}


# ------------------------------------------------------------------------------------------------ docker-compose


def _mounts(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            src, dst = vol.split(":")[:2]
            out.append((name, src, dst))
    return out


def test_compose_mounted_files_exist(compose: dict[str, Any]) -> None:
    """Every file compose mounts exists and every named volume is declared."""
    for svc, src, _ in _mounts(compose):
        if src.startswith("./"):
            assert (ROOT / src).exists(), f"{svc}: {src} does not exist"
        elif not src.startswith("/"):
            assert src in compose["volumes"], f"{svc}: named volume {src} not declared"


def test_compose_images_pinned(compose: dict[str, Any]) -> None:
    """Every compose image is pinned to a version tag."""
    for name, svc in compose["services"].items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: {image} has no tag"
        assert tag, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert tag not in {"latest", "main", "nightly"}, f"{name}: {image} not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image} not pinned"


def test_compose_config_paths_match_commands(compose: dict[str, Any]) -> None:
    """The config paths compose mounts are the ones the services' commands read."""
    s = compose["services"]
    mounted = {(svc, dst) for svc, _, dst in _mounts(compose)}
    assert ("otel-collector", "/etc/otelcol/config.yaml") in mounted
    assert "--config=/etc/otelcol/config.yaml" in s["otel-collector"]["command"]
    assert ("prometheus", "/etc/prometheus/prometheus.yml") in mounted
    assert ("prometheus", "/etc/prometheus/rules") in mounted  # rule_files: rules/*.yml relative to the config
    assert "--web.enable-remote-write-receiver" in s["prometheus"]["command"]
    assert ("grafana", "/etc/grafana/provisioning") in mounted
    assert ("grafana", "/var/lib/grafana/dashboards") in mounted
    assert ("alertmanager", "/etc/alertmanager/alertmanager.yml") in mounted
    # Persistent queues live on a named volume at the config's default storage directory.
    defaults = {var: d for var, _, d in ENV_REF.findall(CONFIG.read_text())}
    storage = defaults["OTELCOL_STORAGE_DIR"]
    assert any(svc == "otel-collector" and storage.startswith(dst) for svc, _, dst in _mounts(compose))


def test_compose_publishes_only_needed_ports(compose: dict[str, Any]) -> None:
    """compose publishes only needed ports, on loopback, and every service has a healthcheck."""
    published = {name: svc.get("ports", []) for name, svc in compose["services"].items()}
    assert not published["tempo"], "backends are reached through Grafana/the Collector"
    assert not published["loki"], "backends are reached through Grafana/the Collector"
    for name in ("prometheus", "alertmanager"):
        assert all(p.startswith("127.0.0.1:") for p in published[name]), name
    # Grafana: loopback unless the user overrides GRAFANA_BIND on purpose.
    (grafana_port,) = published["grafana"]
    assert grafana_port.startswith(("127.0.0.1:", "${GRAFANA_BIND:-127.0.0.1}:")), grafana_port
    assert compose["services"]["hostmetrics"]["profiles"] == ["hostmetrics"]
    for name in ("prometheus", "alertmanager", "grafana"):
        assert "healthcheck" in compose["services"][name], name


# Readiness endpoint each service's healthcheck must probe (Tempo and Loki: /ready; Collector: health_check).
READY = {"tempo": ":3200/ready", "loki": ":3100/ready", "otel-collector": ":13133/health"}


def test_compose_healthchecks_probe_readiness(compose: dict[str, Any]) -> None:
    """Healthchecks probe readiness with a static busybox, and dependents wait for it."""
    services = compose["services"]
    init = services["volume-init"]
    probe_vol = next(v.split(":")[0] for v in init["volumes"] if v.split(":")[1] == "/probe")
    assert "cp /bin/busybox /probe/busybox" in " ".join(init["command"])
    assert init["image"].endswith("-musl"), "the probe must be a static binary (scratch/distroless images)"
    for name, endpoint in READY.items():
        svc = services[name]
        test = svc["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "/probe/busybox" and test[-1].endswith(endpoint), (name, test)
        assert f"{probe_vol}:/probe:ro" in svc["volumes"], name
        assert svc["depends_on"]["volume-init"]["condition"] == "service_completed_successfully", name
    # Dependents wait for real readiness, not just a started container.
    for name in ("otel-collector", "grafana"):
        for dep in ("tempo", "loki"):
            assert services[name]["depends_on"][dep]["condition"] == "service_healthy", (name, dep)


def _bytes(size: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([kmg]i?b?)?", size.strip().lower())
    assert m, size
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[(m.group(2) or "")[:1]]
    return int(m.group(1)) * mult


def test_compose_collectors_have_a_memory_limit_and_gomemlimit(compose: dict[str, Any]) -> None:
    """memory_limiter's limit_percentage is a share of the cgroup limit; without one it is 80% of the host's RAM."""
    for name in ("otel-collector", "hostmetrics"):
        svc = compose["services"][name]
        limit = ENV_DEFAULT.search(str(svc["mem_limit"]))
        gomem = ENV_DEFAULT.search(str(svc["environment"]["GOMEMLIMIT"]))
        assert limit and gomem, name
        lim, go = _bytes(limit.group(1)), _bytes(gomem.group(1))
        assert 0.6 * lim <= go <= 0.9 * lim, (name, lim, go)
    for path in (CONFIG, CC / "hostmetrics.yaml"):
        ml = load(path)["processors"]["memory_limiter"]
        assert "limit_percentage" in ml or "limit_mib" in ml, path


def test_compose_grafana_has_no_default_password(compose: dict[str, Any]) -> None:
    """Grafana's admin password is a required env variable without a default."""
    env = compose["services"]["grafana"]["environment"]
    pw = str(env.get("GF_SECURITY_ADMIN_PASSWORD", "")) + str(env.get("GF_SECURITY_ADMIN_PASSWORD__FILE", ""))
    assert pw, "Grafana admin password must be configured"
    assert not re.search(r":-\s*admin\b|^admin$", pw), pw
    if "GF_SECURITY_ADMIN_PASSWORD" in env:
        assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", pw), "required env var, no default"


def test_compose_slack_secrets_match_alertmanager_receivers(compose: dict[str, Any]) -> None:
    """One webhook secret per severity, mounted where alertmanager.yml reads it."""
    am = load(ROOT / "stack" / "alertmanager" / "alertmanager.yml")
    files = {sc["api_url_file"] for r in am["receivers"] for sc in r["slack_configs"]}
    mounted = {f"/run/secrets/{name}" for name in compose["services"]["alertmanager"]["secrets"]}
    assert files == mounted and len(files) == 2, (files, mounted)
    for name in compose["services"]["alertmanager"]["secrets"]:
        assert name in compose["secrets"], name


# ------------------------------------------------------------------------------------------------ Tempo and Loki

# Top-level blocks Tempo 3.x removed: a 3.x binary refuses the whole file ("field compactor not found in type
# app.Config"). Compaction and retention moved to backend_scheduler / backend_worker.
TEMPO_REMOVED_IN_3 = {"ingester", "ingester_client", "compactor", "metrics_generator_client"}
TEMPO_3_TOP_LEVEL = {
    "target", "http_api_prefix", "server", "internal_server", "distributor", "querier", "query_frontend",
    "frontend_worker", "metrics_generator", "storage", "overrides", "memberlist", "usage_report", "cache",
    "backend_scheduler", "backend_scheduler_client", "backend_worker", "block_builder", "live_store",
    "live_store_client", "ingest", "partition_ring_live_store", "stream_over_http_enabled", "multitenancy_enabled",
}


def test_tempo_config_fits_tempo_3() -> None:
    """The Tempo config uses only blocks Tempo 3 accepts, with retention where 3.x reads it."""
    compose = load(COMPOSE)
    tag = compose["services"]["tempo"]["image"].rsplit(":", 1)[1]
    assert tag.split(".")[0] == "3", tag
    tempo = load(ROOT / "stack" / "tempo" / "tempo.yaml")
    removed = TEMPO_REMOVED_IN_3 & set(tempo)
    assert not removed, f"Tempo 3.x refuses these top-level blocks: {sorted(removed)}"
    assert set(tempo) <= TEMPO_3_TOP_LEVEL, sorted(set(tempo) - TEMPO_3_TOP_LEVEL)
    # Retention lives where 3.x reads it: the worker runs retention jobs, the scheduler plans compaction.
    worker = tempo["backend_worker"]["compaction"]["block_retention"]
    sched = tempo["backend_scheduler"]["provider"]["compaction"]["compaction"]["block_retention"]
    assert worker == sched == "336h"


def _loki_action(otlp: dict[str, Any], attribute: str) -> str:
    """Loki's rule for resource attributes (pkg/loghttp/push/otlp_config.go): its default index-label list is
    prepended unless ignore_defaults, the first matching rule wins, unmatched attributes are structured metadata."""
    ra = otlp.get("resource_attributes", {})
    rules = list(ra.get("attributes_config", []))
    if not ra.get("ignore_defaults"):
        defaults = ["service.name", "service.instance.id", "k8s.pod.name"]  # part of Loki's list
        rules.insert(0, {"action": "index_label", "attributes": defaults})
    for r in rules:
        if attribute in r.get("attributes", []) or ("regex" in r and re.fullmatch(r["regex"], attribute)):
            return str(r.get("action", "structured_metadata"))
    return "structured_metadata"


def test_loki_index_labels_are_low_cardinality() -> None:
    """Loki keeps high-cardinality ids as structured metadata and only selectors as index labels."""
    otlp = load(ROOT / "stack" / "loki" / "loki.yaml")["limits_config"]["otlp_config"]
    # Random per process / pod: a new stream on every restart would churn Loki's index.
    for attr in ("service.instance.id", "k8s.pod.name", "agentpress.thread.id", "agentpress.project.id",
                 "user.id", "session.id", "gen_ai.conversation.id"):
        assert _loki_action(otlp, attr) == "structured_metadata", attr
    # What Grafana selects streams by (dashboards' {service_name=...}, tracesToLogsV2 tags) stays a label.
    for attr in ("service.name", "deployment.environment.name", "service.namespace"):
        assert _loki_action(otlp, attr) == "index_label", attr


def test_environment_fallback_is_the_library_default() -> None:
    """One default everywhere: what the Collector stamps on data without an environment (and docker-compose passes
    it) is what the library sets when the app names none, so picking that environment in Grafana finds both."""
    from agentpress_otel._config import load_config

    library = load_config({}, env={}).environment
    cfg = yaml.safe_load(CONFIG.read_text())
    attrs = cfg["processors"]["resource/env"]["attributes"]
    (action,) = [a for a in attrs if a["key"] == "deployment.environment.name"]
    assert action["action"] == "insert"  # only where the app set none
    m = re.fullmatch(r"\$\{env:OTELCOL_DEPLOYMENT_ENVIRONMENT:-(.+)\}", action["value"])
    assert m and m.group(1) == library, action["value"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    envs = [s.get("environment", {}) for s in compose["services"].values()]
    key = "OTELCOL_DEPLOYMENT_ENVIRONMENT"
    values = [e[key] for e in envs if isinstance(e, dict) and key in e]
    assert values and all(v.endswith(f":-{library}}}") for v in values), values


# The patterns issue 17 replaced, kept here as the reference the faster ones must agree with.
_OLD_KEY = (
    r"(?i)(^|[._-])(password|passwd|pwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|x[_-]api[_-]key|"
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|session[_-]?token|bearer|authorization|"
    r"proxy[_-]authorization|cookie|set[_-]cookie|private[_-]?key|credentials?)($|[._-])"
)
_OLD_VALUES = [r"(?i)bearer\s+[A-Za-z0-9._~+/-]{16,}=*", r"\b4[0-9]{12}(?:[0-9]{3})?\b", r"\b5[1-5][0-9]{14}\b"]


FREE_TEXT_PREFIXES = (
    "url.full", "url.path", "url.query", "url.original", "db.query", "gen_ai.input", "gen_ai.output",
    "gen_ai.system_instructions", "gen_ai.tool.call.arg", "gen_ai.tool.call.res", "http.request.header",
    "user_agent", "exception.", "error.message",
)


def test_cheaper_redaction_patterns_match_what_the_old_ones_matched(cfg: dict[str, Any]) -> None:
    """The cheaper redaction patterns match what the old ones did and never skip free-text keys."""
    import random

    red = cfg["processors"]["redaction"]
    (pattern,) = red["blocked_key_patterns"]
    new_key = re.compile(pattern.replace("(?i)", ""), re.IGNORECASE)
    old_key = re.compile(_OLD_KEY.replace("(?i)", ""), re.IGNORECASE)
    words = ["password", "passwd", "pwd", "passphrase", "secret", "client", "api", "key", "apikey", "x", "access",
             "refresh", "id", "auth", "session", "token", "bearer", "authorization", "proxy", "cookie", "set",
             "private", "credential", "credentials", "gen_ai", "usage", "input", "tokens", "http", "header", "db"]
    rng = random.Random(17)
    for _ in range(50_000):
        key = "".join(rng.choice(words) + rng.choice(["", ".", "_", "-"]) for _ in range(rng.randint(1, 4)))
        key = key.upper() if rng.random() < 0.1 else key
        assert bool(new_key.search(key)) == bool(old_key.search(key)), key
    # Values: card numbers and bearer tokens (in the spellings clients send) are still masked.
    values = [re.compile(v) for v in red["blocked_values"]]
    old_values = [re.compile(v) for v in _OLD_VALUES]
    samples = ["4111111111111111", "4222222222222", "5500000000000004", "5105105105105100",
               "card 4012888888881881.", "Bearer abcdefghijklmnop0123", "authorization: bearer abcdefghijklmnop0123==",
               "BEARER ABCDEFGHIJKLMNOPQR"]
    for _ in range(20_000):
        samples.append("".join(rng.choice("0123456789 x") for _ in range(rng.randint(12, 24))))
    for v in samples:
        if any(o.search(v) for o in old_values):
            assert any(n.search(v) for n in values), v
    # ignored_keys never skip a key that can carry free text or a credential.
    for key in red.get("ignored_keys", []):
        assert not new_key.search(key), key
        assert not key.startswith(FREE_TEXT_PREFIXES), key


def test_gateway_series_carry_an_instance_label_that_dashboards_aggregate_away(cfg: dict[str, Any]) -> None:
    """Several gateways emit the same span-metrics/service-graph series; the label keeps them apart (checked live in
    tests/integration/test_agent_tier.py) and every dashboard query over them sums across gateways."""
    import json

    stmts = [s for st in cfg["processors"]["transform/metric_labels"]["metric_statements"] for s in st["statements"]]
    assert any('datapoint.attributes["otelcol.instance"]' in s and "OTELCOL_INSTANCE_ID" in s for s in stmts)
    gen = re.compile(r"traces_(span_metrics|service_graph)_\w+")
    seen = 0
    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        for expr in dashboard_exprs(json.loads(path.read_text()), ("expr",)):
            if not gen.search(expr) or expr.startswith("label_values"):
                continue
            seen += 1
            assert "otelcol_instance" not in expr, f"{path.name}: {expr}"
            # Every selector of a gateway series sits inside an aggregation (sum by (...) / histogram over sum by).
            for m in gen.finditer(expr):
                # (also `sum by (...) (rate(a) or rate(b))`: both selectors sit inside the one sum)
                assert re.search(r"\bsum (by \([^)]*\) )?\(\s*(?:[^()]|\([^()]*\))*?(rate|increase)\($",
                                 expr[: m.start()]), \
                    f"{path.name}: {expr}"
    assert seen >= 2  # the service-graph panels (RED panels read the SDK histograms, issue 15)
