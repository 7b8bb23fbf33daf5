"""Where a command writes: results to stdout, problems to stderr, progress bars on stderr."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO


class Console:
    """Where the command writes: results to stdout, problems to stderr; --quiet keeps only problems."""

    def __init__(self, quiet: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.quiet = quiet
        self._out = out
        self._err = err

    # Looked up when written, not when defined, so a redirected sys.stdout is honoured.
    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    @property
    def err(self) -> TextIO:
        return self._err or sys.stderr

    def info(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out)

    def data(self, text: str) -> None:
        print(text, file=self.out)

    def problem(self, text: str) -> None:
        print(text, file=self.err)

    @contextlib.contextmanager
    def showing(self, category: type[Warning]) -> Iterator[None]:
        """Print every warning of ``category`` issued meanwhile among the problems (stderr, --quiet
        included: a warning is a problem), each time it is issued; other warnings go where they went."""
        with warnings.catch_warnings():
            warnings.simplefilter("always", category)
            shown = warnings.showwarning

            def show(message, kind, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
                if issubclass(kind, category):
                    self.problem(str(message))
                else:
                    shown(message, kind, filename, lineno, file, line)

            warnings.showwarning = show
            yield


class ProgressBar:
    """A progress bar on stderr per stage (hidden with --quiet or when stderr is not a terminal and CI is set)."""

    def __init__(self, console: Console) -> None:
        self.enabled = not console.quiet
        self._bar = None
        self._tasks: dict[str, object] = {}

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self._bar.__enter__()
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._bar is None:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[stage], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
