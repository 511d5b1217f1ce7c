"""README.md is the artist's page; the rest lives in docs/. Every relative link resolves."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return out


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Links that lead to no file or heading, or out of ``root``."""
    bad = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):                    # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or root not in dest.parents:
            bad.append(target)
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            bad.append(target)
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_link_check_can_fail(tmp_path):
    page = tmp_path / "x.md"
    page.write_text("# Title here\n[a](missing.md) [b](#title-here) [c](#nope) [d](x.md#title-here)"
                    " [e](../outside.md)\n")
    (tmp_path.parent / "outside.md").write_text("# Out\n")
    assert broken_links(page, root=tmp_path) == ["missing.md", "#nope", "../outside.md"]


def test_readme_is_short_and_links_every_doc():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 150
    for doc in ("nodes", "batch", "training", "performance", "developing"):
        assert f"(docs/{doc}.md)" in text


def test_pages_speak_about_the_pack_only():
    for page in PAGES:
        text = page.read_text()
        for word in ("SPEC", "DEVELOPERS.md", "ANCHORS", "../shared", "session", "this issue"):
            assert word not in text, (page.name, word)
