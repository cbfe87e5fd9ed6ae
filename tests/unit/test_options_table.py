"""The options table is the one declaration: instrument()'s signature, Config, the docs, the variables read at
use time and doctor's source report all agree with it."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import pytest

import agentpress_otel
from agentpress_otel._config import DERIVED_FIELDS, Config, load_config, sdk_disabled
from agentpress_otel._options import ARGUMENTS, BY_NAME, OPTIONS, SECRETS, env_value, replace_docs
from agentpress_otel.cli.doctor import config_rows
from agentpress_otel.genai import prices
from agentpress_otel.redaction._engine import default_hash_key

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
#: instrument() keywords that are objects, not settings (documented by hand, not in Config).
NOT_OPTIONS = {"export_otlp", "additional_span_processors", "additional_metric_readers", "additional_log_processors"}


def test_instrument_signature_equals_the_table() -> None:
    """Every keyword of instrument() is a table option with the table's annotation, and vice versa."""
    params = inspect.signature(agentpress_otel.instrument).parameters
    keywords = {n: p for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(keywords) - NOT_OPTIONS == ARGUMENTS
    for name in ARGUMENTS:
        assert keywords[name].default is None, name  # None = "not given": the next source decides
        assert keywords[name].annotation == BY_NAME[name].arg_type, name


def test_config_fields_equal_the_table() -> None:
    """Config has one field per table option (same name, same type) plus the derived ones, nothing else."""
    fields = {f.name: f.type for f in dataclasses.fields(Config)}
    declared = {o.name: o.type for o in OPTIONS if o.in_config}
    assert set(fields) == set(declared) | set(DERIVED_FIELDS)
    for name, type_ in declared.items():
        assert fields[name] == type_, name


def test_docs_equal_the_table() -> None:
    """docs/configuration.md holds exactly the tables the options table renders (scripts/gen-config-docs.py)."""
    text = DOC.read_text(encoding="utf-8")
    assert replace_docs(text) == text, "run scripts/gen-config-docs.py"
    for opt in OPTIONS:
        assert f"| `{opt.name}`" in text
        for var in opt.variables:
            assert f"`{var}`" in text, var


def test_every_variable_read_by_the_package_is_declared() -> None:
    """No module outside the table reads an AGENTPRESS_OTEL_* variable of an option by itself."""
    src = Path(agentpress_otel.__file__).parent
    declared = {v for o in OPTIONS for v in o.variables}
    for path in src.rglob("*.py"):
        if path.name in ("_options.py", "_option_types.py"):
            continue
        text = path.read_text(encoding="utf-8")
        for var in declared:
            # A read (environ.get / environ[...] / getenv) or a constant naming the variable for one.
            read = re.search(rf"""(\.get\(|environ\[|getenv\(|^\w+ = )["']{var}["']""", text, re.M)
            assert read is None, f"{path.relative_to(src)} reads {var} itself: read it through the table"


@pytest.mark.parametrize(
    ("name", "arg", "env", "value", "source"),
    [
        ("service_name", "arg", {"AGENTPRESS_OTEL_SERVICE_NAME": "ours", "OTEL_SERVICE_NAME": "std"}, "arg",
         "argument"),
        ("service_name", None, {"AGENTPRESS_OTEL_SERVICE_NAME": "ours", "OTEL_SERVICE_NAME": "std"}, "ours",
         "AGENTPRESS_OTEL_SERVICE_NAME"),
        ("service_name", None, {"OTEL_SERVICE_NAME": "std"}, "std", "OTEL_SERVICE_NAME"),
        ("service_name", None, {}, "unknown_service:python", "default"),
        ("export_timeout_s", 2.0, {"AGENTPRESS_OTEL_EXPORT_TIMEOUT_S": "3", "OTEL_EXPORTER_OTLP_TIMEOUT": "4000"},
         2.0, "argument"),
        ("export_timeout_s", None, {"AGENTPRESS_OTEL_EXPORT_TIMEOUT_S": "3", "OTEL_EXPORTER_OTLP_TIMEOUT": "4000"},
         3.0, "AGENTPRESS_OTEL_EXPORT_TIMEOUT_S"),
        ("export_timeout_s", None, {"OTEL_EXPORTER_OTLP_TIMEOUT": "4000"}, 4.0, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ("export_timeout_s", None, {}, 10.0, "default"),
        ("capture_content", False, {"AGENTPRESS_OTEL_CAPTURE_CONTENT": "true"}, False, "argument"),
        ("capture_content", None, {"AGENTPRESS_OTEL_CAPTURE_CONTENT": "no",
                                   "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"}, False,
         "AGENTPRESS_OTEL_CAPTURE_CONTENT"),
        ("capture_content", None, {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"}, True,
         "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
        ("capture_content", None, {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}, False,
         "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
        ("max_queue_size", 10, {"AGENTPRESS_OTEL_MAX_QUEUE_SIZE": "20", "OTEL_BSP_MAX_QUEUE_SIZE": "30"}, 10,
         "argument"),
        ("max_queue_size", None, {"OTEL_BSP_MAX_QUEUE_SIZE": "30"}, 30, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ("redact_hash_key", "k" * 16, {"AGENTPRESS_OTEL_REDACT_HASH_KEY": "e" * 16}, "k" * 16, "argument"),
        ("redact_hash_key", None, {"AGENTPRESS_OTEL_REDACT_HASH_KEY": "e" * 16}, "e" * 16,
         "AGENTPRESS_OTEL_REDACT_HASH_KEY"),
        ("redact_hash_key", None, {}, None, "default"),
        ("prices_file", None, {"AGENTPRESS_OTEL_PRICES_FILE": "/etc/p.json"}, "/etc/p.json",
         "AGENTPRESS_OTEL_PRICES_FILE"),
        ("prices_file", None, {}, None, "default"),
        ("disabled", None, {"AGENTPRESS_OTEL_DISABLED": "yes"}, True, "AGENTPRESS_OTEL_DISABLED"),
        ("disabled", None, {"OTEL_SDK_DISABLED": "TRUE"}, True, "OTEL_SDK_DISABLED"),
        # A kill switch: our variable set to false does not undo the standard one.
        ("disabled", None, {"AGENTPRESS_OTEL_DISABLED": "false", "OTEL_SDK_DISABLED": "true"}, True,
         "OTEL_SDK_DISABLED"),
        ("disabled", None, {"OTEL_SDK_DISABLED": "1"}, False, "default"),  # the SDK counts only "true"
        ("disabled", None, {}, False, "default"),
    ],
)
def test_each_precedence_level(name: str, arg: object, env: dict[str, str], value: object, source: str) -> None:
    """argument > AGENTPRESS_OTEL_* > OTEL_* > default, with the source recorded, for a sample of options and the
    three variables formerly read outside Config (DISABLED, PRICES_FILE, REDACT_HASH_KEY)."""
    cfg = load_config({name: arg} if arg is not None else {}, env=env)
    assert getattr(cfg, name) == value
    assert cfg.sources[name] == source
    if BY_NAME[name].arg_type is None or arg is None:
        assert env_value(name, env) == value  # what the code reading it at use time gets


def test_disabled_integrations_and_resource_attribute_sources() -> None:
    """Options that combine several sources name all of them."""
    env = {"OTEL_RESOURCE_ATTRIBUTES": "team=a", "AGENTPRESS_OTEL_RESOURCE_ATTRIBUTES": "tier=gold"}
    cfg = load_config({"resource_attributes": {"x": "1"}}, env=env)
    assert cfg.resource_attributes == {"team": "a", "tier": "gold", "x": "1"}
    assert cfg.sources["resource_attributes"] == (
        "OTEL_RESOURCE_ATTRIBUTES + AGENTPRESS_OTEL_RESOURCE_ATTRIBUTES + argument")


def test_the_kill_switch_is_read_through_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """sdk_disabled() (instrument(), the zero-code hook, doctor) answers from the table, never raising."""
    monkeypatch.delenv("AGENTPRESS_OTEL_DISABLED", raising=False)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert sdk_disabled() is True
    monkeypatch.setenv("OTEL_SDK_DISABLED", "garbage")
    assert sdk_disabled() is False


def test_prices_file_is_read_through_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_prices_file() finds AGENTPRESS_OTEL_PRICES_FILE through the table; its argument still wins."""
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"table-model-a": {"input": 1.0, "output": 2.0}}), encoding="utf-8")
    arg = tmp_path / "arg.json"
    arg.write_text(json.dumps({"table-model-b": {"input": 3.0, "output": 4.0},
                               "table-model-c": {"input": 3.0, "output": 4.0}}), encoding="utf-8")
    monkeypatch.setenv("AGENTPRESS_OTEL_PRICES_FILE", str(ours))
    try:
        assert prices.load_prices_file() == 1
        assert prices.lookup("table-model-a") is not None
        assert prices.load_prices_file(str(arg)) == 2
        monkeypatch.delenv("AGENTPRESS_OTEL_PRICES_FILE")
        assert prices.load_prices_file() == 0
    finally:
        prices.reset_prices()


def test_redaction_key_is_read_through_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's default key is the table's value of AGENTPRESS_OTEL_REDACT_HASH_KEY (too short: random)."""
    monkeypatch.setenv("AGENTPRESS_OTEL_REDACT_HASH_KEY", "shared-key-0123456789")
    assert default_hash_key() == b"shared-key-0123456789"
    monkeypatch.setenv("AGENTPRESS_OTEL_REDACT_HASH_KEY", "short")
    assert default_hash_key() != default_hash_key()  # a fresh random key each time


def test_doctor_names_the_source_of_the_formerly_stray_variables(tmp_path: Path) -> None:
    """doctor's rows show the kill switch, the price file and the hash key with the variable they came from."""
    env = {"OTEL_SDK_DISABLED": "true", "AGENTPRESS_OTEL_PRICES_FILE": str(tmp_path / "p.json"),
           "AGENTPRESS_OTEL_REDACT_HASH_KEY": "secret-key-0123456789"}
    rows = {name: (value, src) for name, value, src in config_rows(load_config({}, env=env))}
    assert rows["disabled"] == ("True", "OTEL_SDK_DISABLED")
    assert rows["prices_file"] == (str(tmp_path / "p.json"), "AGENTPRESS_OTEL_PRICES_FILE")
    assert rows["redact_hash_key"] == ("***", "AGENTPRESS_OTEL_REDACT_HASH_KEY")
    assert {o.name for o in OPTIONS if o.in_config} <= set(rows)
    assert "redact_hash_key" in SECRETS


def test_unknown_option_is_a_config_error() -> None:
    """load_config refuses a name that is not an instrument() option of the table."""
    with pytest.raises(agentpress_otel.ConfigError, match="unknown options"):
        load_config({"sample_rate": 0.5}, env={})


def test_a_bad_value_in_every_variable_never_raises() -> None:
    """Whatever the environment holds, load_config warns and falls back; it never raises (only arguments do)."""
    noisy = {v: "garbage(" for o in OPTIONS for v in o.variables}
    with pytest.warns(RuntimeWarning):
        cfg = load_config({}, env=noisy)
    assert cfg.sources["service_name"] == "AGENTPRESS_OTEL_SERVICE_NAME"  # a plain string is never invalid
    assert cfg.sources["sample_ratio"] == "default" and cfg.config_warnings
