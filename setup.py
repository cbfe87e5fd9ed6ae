"""Build hooks: the redactor's optional C pre-check (an extension module), and the deploy files
(collector-config/, stack/, grafana/) shipped in the wheel as package data.

The deploy files stay where docker-compose users and the tests use them (one source of truth in git); at build time
``build_py`` copies them into ``agentpress_otel/_deploy/`` of the build tree, where ``agentpress_otel._assets``
finds them through importlib.resources. MANIFEST.in puts the same folders in the sdist, so a wheel built from
the sdist carries them too. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DEPLOY_DIRS = ("collector-config", "stack", "grafana")  # = agentpress_otel._assets.DEPLOY_DIRS
# Build outputs and caches that live inside those folders but are not product.
IGNORE = shutil.ignore_patterns("_build", "__pycache__", "*.pyc")


class BuildPyWithDeployFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own files (see _assets.deploy_root)
        target = Path(self.build_lib) / "agentpress_otel" / "_deploy"
        shutil.rmtree(target, ignore_errors=True)
        for name in DEPLOY_DIRS:
            shutil.copytree(ROOT / name, target / name, ignore=IGNORE)


# The short-string pre-check of the redactor (issue 19), in C. Optional: without a compiler the package still
# installs, and Redactor.redact asks RE2 about every string, as before (agentpress_otel.redaction._needles).
PRECHECK = Extension(
    "agentpress_otel.redaction._precheck", ["src/agentpress_otel/redaction/_precheck.c"], optional=True
)

setup(cmdclass={"build_py": BuildPyWithDeployFiles}, ext_modules=[PRECHECK])
