"""The README and docs/README.md point only at files that exist, and docs/README.md indexes every page."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def links(page: Path) -> list[Path]:
    return [
        (page.parent / target).resolve()
        for target in LINK.findall(page.read_text(encoding="utf-8"))
        if "://" not in target
    ]


def test_every_docs_page_is_in_the_index():
    index = ROOT / "docs" / "README.md"
    listed = {p for p in links(index) if p.suffix == ".md" and p.parent == index.parent}
    pages = {p.resolve() for p in (ROOT / "docs").glob("*.md") if p.name != "README.md"}
    assert pages - listed == set(), "pages missing from docs/README.md"


def test_links_of_the_readme_and_the_index_resolve():
    for page in (ROOT / "README.md", ROOT / "docs" / "README.md"):
        missing = [str(p.relative_to(ROOT)) for p in links(page) if not p.exists()]
        assert missing == [], f"{page.name} links to files that do not exist"
