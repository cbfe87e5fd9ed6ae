"""The resource our providers carry hashes once, equals the SDK's Resource, and stays so through merges."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource

import agentpress_otel
from agentpress_otel import _setup
from agentpress_otel._config import load_config
from agentpress_otel._providers import HashedResource, build_resource


def test_same_hash_and_equality_as_the_sdk_resource() -> None:
    """A HashedResource hashes and compares like the SDK Resource with the same attributes."""
    attrs = {"service.name": "api", "process.pid": 7, "host.arch": "amd64", "x": ("a", "b")}
    h, plain = HashedResource(attrs, "https://opentelemetry.io/schemas/1.37.0"), \
        Resource(attrs, "https://opentelemetry.io/schemas/1.37.0")
    assert hash(h) == hash(plain) and h == plain
    assert {plain: 1}[h] == 1  # the encoders group spans by resource in a dict


def test_merge_keeps_the_class_and_the_new_values() -> None:
    """merge() returns a HashedResource with the merged values and their hash."""
    h = HashedResource({"service.name": "api", "process.pid": 7})
    m = h.merge(Resource({"service.name": "worker"}))
    assert isinstance(m, HashedResource)
    assert m.attributes["service.name"] == "worker" and m.attributes["process.pid"] == 7
    assert hash(m) == hash(Resource(dict(m.attributes)))


def test_build_resource_and_a_rename_through_the_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """instrument() builds a HashedResource; a rename (instrument(app) naming the process, a Dramatiq worker
    booting) and the after-fork hook go through the SDK providers' _update_resource, and keep one whose hash
    follows the new values."""
    assert isinstance(build_resource(load_config({"service_name": "a"})), HashedResource)
    tel = agentpress_otel.instrument(service_name="hashed-a", endpoint="http://127.0.0.1:9", traces=True,
                                     metrics=False, logs=False, integrations=[])
    try:
        assert _setup._rename(tel, "hashed-b", why="test")
        tel._after_fork_in_child()
        res = tel.tracer_provider._resource  # what every span of this provider carries
        assert isinstance(res, HashedResource)
        assert res.attributes["service.name"] == "hashed-b"
        assert hash(res) == hash(Resource(dict(res.attributes), res.schema_url))
    finally:
        tel.shutdown(timeout_s=1)

