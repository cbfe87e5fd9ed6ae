#!/usr/bin/env python3
"""Regenerate the option tables of docs/configuration.md from the options table (agentpress_otel._options).

tests/unit/test_options_table.py fails while the two differ. Usage: ``.venv/bin/python scripts/gen-config-docs.py``
"""

from pathlib import Path

from agentpress_otel._options import replace_docs

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

if __name__ == "__main__":
    DOC.write_text(replace_docs(DOC.read_text(encoding="utf-8")), encoding="utf-8")
