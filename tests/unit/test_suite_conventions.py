"""Conventions of the test suite itself, checked so they keep holding as tests are added."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _test_functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for folder in ("unit", "integration"):
        for path in sorted((TESTS / folder).glob("test_*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                    found.append((f"{folder}/{path.name}::{node.name}", node))
    return found


def test_every_test_says_what_it_proves() -> None:
    """Every test function in tests/unit and tests/integration opens with a docstring saying what it proves."""
    tests = _test_functions()
    assert len(tests) > 400  # the scan found the suite
    missing = [name for name, node in tests if not (ast.get_docstring(node) or "").strip().splitlines()[:1]]
    assert not missing, f"add a one-line docstring (what the test proves) to: {missing}"
