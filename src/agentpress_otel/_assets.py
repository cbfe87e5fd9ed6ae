"""Where the deploy files (Collector config and manifest, Prometheus/Alertmanager configs, dashboards) are read from.

One source of truth: ``collector-config/``, ``stack/`` and ``grafana/`` at the top of the repository are what
docker-compose mounts and what the tests run. The wheel carries byte-identical copies as package data under
``agentpress_otel/_deploy/`` (``setup.py`` copies them at build time; a test compares the wheel's copies with the
repository files), so an installed package never looks for a repository.

An editable install (``pip install -e .``) has no build step, so there the package falls back to the checkout
the package is imported from: the same files, never a copy.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["DEPLOY_DIRS", "deploy_file", "deploy_root"]

#: Top-level folders of the repository that ship in the wheel (under ``agentpress_otel/_deploy/``).
DEPLOY_DIRS = ("collector-config", "stack", "grafana")


class DeployFilesMissing(RuntimeError):
    """Neither the installed package data nor a source checkout holds the deploy files."""


def deploy_root() -> Path:
    """The folder holding ``collector-config/``, ``stack/`` and ``grafana/``.

    Example::

        config = deploy_root() / "collector-config" / "config.yaml"
    """
    # importlib.resources gives a real folder for a regular (unzipped) install, which is all pip produces.
    packaged = Path(str(importlib.resources.files("agentpress_otel") / "_deploy"))
    if (packaged / "collector-config").is_dir():
        return packaged
    # Editable install: src/agentpress_otel/ -> the checkout two levels up.
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "collector-config" / "config.yaml").is_file():
        return checkout
    raise DeployFilesMissing(
        f"agentpress-otel's deploy files are missing from {packaged}; reinstall the package from a wheel "
        "(`pip install agentpress-otel[cli]`) or install a checkout with `pip install -e .`"
    )


def deploy_file(relative: str) -> Path:
    """One deploy file by its repository path, e.g. ``"collector-config/config.yaml"``.

    Example::

        rules = deploy_file("stack/prometheus/rules")
    """
    return deploy_root() / relative
