"""The engine's pages in ``docs/`` run as written: every ``python`` block of a page, in order and in one
namespace, from the repository's root, prints what the ``text`` block after it says."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from .conftest import ROOT

PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.DOTALL)


def examples(page: Path) -> list[tuple[str, str | None]]:
    """Each python block of ``page`` with the text block that follows it (None if another block follows)."""
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    pairs: list[tuple[str, str | None]] = []
    for i, (kind, body) in enumerate(blocks):
        if kind == "python":
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            pairs.append((body, after[1] if after and after[0] == "text" else None))
    return pairs


def test_every_page_is_listed_in_the_index() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "README.md":
            assert f"({page.name})" in index, page.name


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=lambda p: p.stem)
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
