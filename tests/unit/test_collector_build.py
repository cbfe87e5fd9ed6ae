"""The one Collector lookup/build path (``agentpress_otel._harness.collector_build``): explicit path, then
``AGENTPRESS_OTEL_COLLECTOR_BIN``, then the per-user cache keyed by manifest + builder + Go version."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agentpress_otel._harness import collector_build as cb
from agentpress_otel._harness._proc import ComponentMissing


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_explicit_path_wins_over_env_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit Collector path beats the environment variable, which beats the build cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env_bin = _exe(tmp_path / "env" / "otelcol")
    arg_bin = _exe(tmp_path / "arg" / "otelcol")
    monkeypatch.setenv(cb.ENV_BIN, str(env_bin))
    assert cb.collector_binary(arg_bin) == arg_bin
    assert cb.collector_binary() == env_bin


def test_a_bad_explicit_path_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Collector path in the environment that does not exist is a clear error naming the variable."""
    monkeypatch.setenv(cb.ENV_BIN, str(tmp_path / "nope"))
    with pytest.raises(ComponentMissing, match=cb.ENV_BIN):
        cb.collector_binary()


def test_cache_key_follows_manifest_builder_and_go() -> None:
    """The Collector build cache key changes with the Go version and the manifest, and reads the builder version."""
    manifest = cb.deploy_file(cb.MANIFEST).read_text()
    key = cb.cache_key("go1.26.8", manifest)
    assert key == cb.cache_key("go1.26.8", manifest)
    assert key != cb.cache_key("go1.26.9", manifest)
    assert key != cb.cache_key("go1.26.8", manifest + "\n# changed\n")
    assert cb.builder_version(manifest) == "v0.159.0"


def test_without_go_a_cached_build_of_this_manifest_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Go on PATH, a cached build of the same manifest is found and used."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(cb.ENV_BIN, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no go
    with pytest.raises(ComponentMissing, match="install Go"):
        cb.collector_binary()
    import hashlib

    d = tmp_path / "cache" / "agentpress-otel" / "0123456789abcdef"
    binary = _exe(d / cb.BINARY_NAME)
    (d / "manifest.sha256").write_text("not this manifest\n")
    with pytest.raises(ComponentMissing):
        cb.collector_binary()
    (d / "manifest.sha256").write_text(
        hashlib.sha256(cb.deploy_file(cb.MANIFEST).read_text().encode()).hexdigest() + "\n")
    assert cb.collector_binary() == binary
    assert os.access(binary, os.X_OK)
