"""Every relative link in the README, docs/ and benchmarks/RESULTS.md leads somewhere, and the README stays short.

A link is `[text](path)` or `![alt](path)`, with an optional `#anchor`; links to the web (`http:`,
`https:`) and `mailto:` are not followed.  The path is resolved from the linking file's folder and must
exist; an anchor into a Markdown file (or into the file itself, `(#anchor)`) must be the GitHub slug
of one of its headings.  Links inside code (fenced blocks, `inline code`) are not links and are skipped.

    >>> slug("Pages of runs: `beanstrain report` and `beanstrain runs`")
    'pages-of-runs-beanstrain-report-and-beanstrain-runs'
    >>> slug("The NumPy engine: the course's rules by hand")
    'the-numpy-engine-the-courses-rules-by-hand'
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 250  # the first hour: what it is, set-up, the first run, the course, every command
DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "RESULTS.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", flags=re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", flags=re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def without_fences(text: str) -> str:
    """The text with fenced code blocks emptied, their lines kept so that line numbers hold."""
    return FENCE.sub(lambda block: "\n" * block.group(0).count("\n"), text)


def without_code(text: str) -> str:
    """The text without fenced code blocks and inline code."""
    return INLINE_CODE.sub("", without_fences(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation other than '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    text = re.sub(r"[^\w\- ]", "", text.lower().strip())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's slug in a Markdown file, a repeated one numbered as GitHub numbers it (-1, -2 ...)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(without_fences(path.read_text())):  # `code` in a heading is in its slug
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link in a Markdown file, outside code."""
    text = without_code(path.read_text())
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in LINK.finditer(text)]


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line per link in `path` that leads nowhere, naming files relative to `root`."""
    broken = []
    for line, target in links(path):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{line}: {target}"
        if not linked.exists():
            broken.append(f"{where}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{where}: no heading with that anchor in {linked.relative_to(root)}")
    return broken


@pytest.mark.parametrize("path", DOCS, ids=[str(path.relative_to(ROOT)) for path in DOCS])
def test_every_relative_link_resolves(path):
    assert path.exists()
    assert broken_links(path) == []


def test_the_readme_links_to_the_docs():
    targets = {target.partition("#")[0] for _, target in links(README)}
    assert {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")} <= targets


def test_the_readme_is_the_first_hour():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move the rest to docs/ by question"


def test_a_broken_link_and_a_wrong_anchor_are_found(tmp_path):
    (tmp_path / "page.md").write_text("# A page\n\n## Its part: one\n")
    (tmp_path / "picture.png").write_bytes(b"")
    (tmp_path / "index.md").write_text(
        "[ok](page.md#its-part-one) ![ok](picture.png) [ok](#top) [web](https://example.org/x#y)\n"
        "`[code](missing.md)`\n```\n[code](missing.md)\n```\n"
        "# Top\n[gone](missing.md) [bad anchor](page.md#its-part)\n")
    broken = [line.split(": ", 1)[1] for line in broken_links(tmp_path / "index.md", root=tmp_path)]
    assert broken == ["missing.md: no such file", "page.md#its-part: no heading with that anchor in page.md"]

