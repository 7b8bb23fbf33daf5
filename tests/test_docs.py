"""The README and the pages in ``docs/`` run as written: every ``python`` block of a page, in order and in
one namespace, from the repository's root, prints what the ``text`` block after it says; and every link
between them finds its file and, where it names one, its heading."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from .conftest import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def examples(page: Path) -> list[tuple[str, str | None]]:
    """Each python block of ``page`` with the text block that follows it (None if another block follows)."""
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    pairs: list[tuple[str, str | None]] = []
    for i, (kind, body) in enumerate(blocks):
        if kind == "python":
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            pairs.append((body, after[1] if after and after[0] == "text" else None))
    return pairs


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_anchors_follow_github() -> None:
    assert anchor("The campaign's target list") == "the-campaigns-target-list"
    assert anchor("Frontier, goal-seek and infeasible plans") == "frontier-goal-seek-and-infeasible-plans"


def test_every_page_is_listed_in_the_index() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in DOCS:
        if page.name != "README.md":
            assert f"({page.name})" in index, page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_finds_its_page_and_heading(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):          # a web address: not ours to check offline
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target}: no heading '{fragment}' in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_page_runs_and_prints_what_it_says(page: Path) -> None:
    namespace: dict = {"__name__": "__docs__"}
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        for code, expected in examples(page):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, str(page), "exec"), namespace)  # noqa: S102 -- the page is ours, run as a reader would
            if expected is not None:
                assert printed.getvalue().strip() == expected.strip()
    finally:
        os.chdir(here)
