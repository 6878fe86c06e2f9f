"""The README and docs/ hold together: every relative link resolves to a file, every #anchor to a heading of its
target (GitHub's slugs), every page of docs/ is reachable from the README, and the README stays a short front door."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 220
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked (links in code are not links)."""
    lines, fenced = [], None
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fence:
            if fenced is None:
                fenced = fence.group(1)
            elif fence.group(1) == fenced:
                fenced = None
            lines.append("")
            continue
        lines.append("" if fenced else _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line))
    return lines


def links(text: str) -> list[str]:
    """Every link target in a Markdown text: inline links, images and reference definitions."""
    found = []
    for line in prose_lines(text):
        definition = _REFERENCE_DEF.match(line)
        if definition:
            found.append(definition.group(1))
        found.extend(m.group(1) for m in _INLINE_LINK.finditer(line))
    return found


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lowercased, punctuation other than - and _ dropped,
    each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w is Unicode: letters and digits of any script stay
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown text's headings; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for line in prose_lines(text):
        heading = _HEADING.match(line)
        if not heading:
            continue
        slug = github_slug(heading.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def broken_links(page: Path) -> list[str]:
    """The relative links of a page that name no file, or a heading its target does not have."""
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if _EXTERNAL.match(target):
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
            continue
        if fragment and resolved.suffix == ".md" and unquote(fragment) not in anchors(resolved.read_text("utf-8")):
            broken.append(f"{target}: no heading with anchor #{fragment} in {resolved.name}")
    return broken


def test_github_slug_follows_githubs_rules():
    assert github_slug("One run per folder, and exit statuses") == "one-run-per-folder-and-exit-statuses"
    assert github_slug("Decode once: split keeps the frames") == "decode-once-split-keeps-the-frames"
    assert github_slug("Hostile inputs (`benchmarks/hostile_inputs.py`)") == "hostile-inputs-benchmarkshostile_inputspy"
    assert github_slug("caption_image, caption_video, summary") == "caption_image-caption_video-summary"
    assert github_slug("Using [the dataset](x.md)") == "using-the-dataset"
    assert github_slug("Größe  und Ä") == "größe--und-ä"
    assert anchors("# A\n## A\n```\n# A\n```\n## A\n") == {"a", "a-1", "a-2"}


def test_links_ignore_code_and_find_every_kind():
    text = "see [a](a.md#x) and ![i](img.png)\n`[not](code.md)`\n```\n[no](fence.md)\n```\n[ref]: ref.md\n"
    assert links(text) == ["a.md#x", "img.png", "ref.md"]


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "b.md").write_text("# Here\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#here) [gone](c.md) [bad](b.md#there) [self](#nowhere) [web](https://x.org/y#z)\n",
                    encoding="utf-8")
    assert [b.split(":")[0] for b in broken_links(page)] == ["c.md", "b.md#there", "#nowhere"]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_readme_is_a_short_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links((ROOT / "README.md").read_text("utf-8"))}
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages, "docs/ has no pages"
    assert [p.name for p in pages if p.resolve() not in linked] == []
