"""The map of the package in docs/architecture.md lists every module, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_architecture_map_is_the_package():
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text[text.index("```\nbeanstrain/\n"):]
    block = block[:block.index("\n```", 4)]
    listed, folder = set(), ""
    for line in block.splitlines()[1:]:
        name = re.match(r"^\s+(\S+)", line)
        if not name or not line.startswith("  "):
            continue
        if name.group(1).endswith("/"):
            folder = name.group(1)
        else:
            listed.add((folder if line.startswith("    ") else "") + name.group(1))
    modules = {str(path.relative_to(ROOT / "beanstrain")) for path in (ROOT / "beanstrain").rglob("*.py")}
    assert listed == modules - {"__init__.py", "__main__.py"}
