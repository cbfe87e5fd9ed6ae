"""The wheel and the sdist, built by ``python -m build`` as a release would be, carry the deploy files: the same
bytes as the repository's ``collector-config/``, ``stack/`` and ``grafana/`` (the one source of truth that
docker-compose mounts), and an installed wheel reads them from the package, never from a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from harness import REPO_ROOT

pytestmark = pytest.mark.integration

DEPLOY_DIRS = ("collector-config", "stack", "grafana")


def _tracked_deploy_files() -> dict[str, bytes]:
    out = subprocess.run(["git", "ls-files", "-z", *DEPLOY_DIRS], cwd=REPO_ROOT, capture_output=True, check=True)
    names = [n for n in out.stdout.decode().split("\0") if n]
    assert names, "no tracked deploy files?"
    return {n: (REPO_ROOT / n).read_bytes() for n in names}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT)],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


def test_wheel_carries_the_repository_deploy_files_byte_for_byte(dist: Path) -> None:
    """The wheel carries the repository's deploy files byte for byte."""
    (whl,) = dist.glob("agentpress_otel-*.whl")
    prefix = "agentpress_otel/_deploy/"
    with zipfile.ZipFile(whl) as z:
        shipped = {n.removeprefix(prefix): z.read(n) for n in z.namelist() if n.startswith(prefix)}
    tracked = _tracked_deploy_files()
    assert sorted(shipped) == sorted(tracked)
    for name, data in tracked.items():
        assert shipped[name] == data, f"{name}: the wheel's copy differs from the repository file"


def test_sdist_carries_them_too(dist: Path) -> None:
    """The sdist carries the deploy files byte for byte too."""
    (sdist,) = dist.glob("agentpress_otel-*.tar.gz")
    with tarfile.open(sdist) as t:
        top = t.getnames()[0].split("/")[0]
        for name, data in _tracked_deploy_files().items():
            f = t.extractfile(f"{top}/{name}")
            assert f is not None and f.read() == data, name


def test_installed_wheel_reads_its_own_package_data(dist: Path, tmp_path: Path) -> None:
    """Installed without dependencies into a bare venv, run from a folder with no checkout: the deploy root is
    inside that venv and every file the CLI opens exists there. (The dependencies come from this venv's
    site-packages on PYTHONPATH, which holds no ``agentpress_otel``: the editable install is a ``.pth`` finder that
    PYTHONPATH does not run. scripts/check-wheel.sh does the full install.)"""
    (whl,) = dist.glob("agentpress_otel-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", str(whl)],
                   check=True, timeout=300)
    probe = (
        "from agentpress_otel._assets import deploy_root, deploy_file\n"
        "root = deploy_root()\n"
        "print(root)\n"
        "for rel in ('collector-config/config.yaml', 'collector-config/builder-config.yaml',\n"
        "            'collector-config/hostmetrics.yaml', 'collector-config/testing/standin-traces.yaml',\n"
        "            'stack/prometheus/prometheus.yml', 'stack/alertmanager/alertmanager.yml',\n"
        "            'grafana/dashboards/agent-overview.json'):\n"
        "    assert deploy_file(rel).is_file(), rel\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    assert not (Path(deps) / "agentpress_otel").exists()
    env = {**os.environ, "PYTHONPATH": deps}
    res = subprocess.run([str(py), "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    root = Path(res.stdout.strip())
    assert root.is_relative_to(env_dir), root
    assert not root.is_relative_to(REPO_ROOT), root
