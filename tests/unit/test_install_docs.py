"""README's install section stays true: one block per way (checkout, wheel, registry), naming extras, files
and commands that exist; the CI wheel stage runs the commands of the wheel block; and the ``cli`` extra holds
every third-party module the ``agentpress-otel`` command imports (a wheel installed with it must run ``stack``)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

import pytest

from harness import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]


def _block(name: str) -> str:
    m = re.search(rf"<!-- install:{name} -->\s*```bash\n(.*?)```", README, re.S)
    assert m, f"README has no install:{name} block"
    return m.group(1)


@pytest.mark.parametrize("name", ["checkout", "wheel", "registry"])
def test_each_way_has_a_block_whose_extras_exist(name: str) -> None:
    """Every README install block names only extras that pyproject.toml defines."""
    for extra_list in re.findall(r"agentpress[-_]otel[^\s\"]*\[([a-z,]+)\]", _block(name)):
        for extra in extra_list.split(","):
            assert extra in EXTRAS, f"README install:{name} names extra [{extra}] that pyproject.toml lacks"


def test_wheel_block_names_the_file_the_build_makes() -> None:
    """The README wheel block names the wheel file the build makes for this version (platform-specific since the
    redactor's compiled pre-check: any tag)."""
    version = PYPROJECT["project"]["version"]
    assert f"whl=$(ls dist/agentpress_otel-{version}-*.whl)" in _block("wheel")


def test_checkout_block_is_what_setup_does() -> None:
    """The README checkout block runs scripts/setup.sh, which installs ``-e ".[dev]"`` as the block says."""
    block = _block("checkout")
    assert "scripts/setup.sh" in block
    setup = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    assert '-e ".[dev]"' in setup and '-e ".[dev]"' in block


def test_ci_wheel_stage_runs_the_wheel_block_commands() -> None:
    """CI's wheel stage installs the extras and runs the commands of the README wheel block."""
    stage = (REPO_ROOT / "scripts" / "check-wheel.sh").read_text()
    assert "scripts/check-wheel.sh" in (REPO_ROOT / "scripts" / "test.sh").read_text()
    extra = re.search(r"\$whl\[([a-z,]+)\]", _block("wheel"))
    assert extra and f'"$whl[{extra.group(1)}]"' in stage
    for sub in re.findall(r"^agentpress-otel (\w+(?: \w+)?)", _block("wheel"), re.M):
        assert f'agentpress-otel" {sub}' in stage, f"scripts/check-wheel.sh never runs `agentpress-otel {sub}`"


def _third_party_imports(paths: list[str]) -> set[str]:
    found: set[str] = set()
    for rel in paths:
        tree = ast.parse((REPO_ROOT / rel).read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in {"agentpress_otel", "__future__"}:
                    found.add(top)
    return found


# import name -> distribution name, for the ones that differ
DIST = {"yaml": "pyyaml", "google": "opentelemetry-api", "opentelemetry": "opentelemetry-api", "re2": "google-re2"}


def test_cli_extra_covers_what_stack_and_doctor_import() -> None:
    """Everything the CLI's stack and doctor modules import is a dependency or in the [cli] extra."""
    modules = [f"src/agentpress_otel/cli/{m}" for m in ("__init__.py", "stack.py", "doctor.py")] + [
        f"src/agentpress_otel/_harness/{m}" for m in ("_proc.py", "collector.py", "collector_build.py",
                                                       "prometheus.py", "alertmanager.py", "slack_stub.py")]
    core = {re.split(r"[<>=\[ ]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    cli = {re.split(r"[<>=\[ ]", d)[0].lower() for d in EXTRAS["cli"]}
    missing = []
    for mod in sorted(_third_party_imports(modules)):
        dist = DIST.get(mod, mod)
        if dist not in core and dist not in cli and not any(d.startswith(dist) for d in core):
            missing.append(f"{mod} ({dist})")
    assert not missing, f"imported by the CLI but in neither the dependencies nor the [cli] extra: {missing}"
