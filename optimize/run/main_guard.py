"""A script that starts worker processes must keep its work under ``if __name__ == "__main__":``.

Worker processes are started fresh (Python's *spawn*) and each imports the script that started them
again. Without the guard, each one would run the script's work anew instead of waiting for its share:
Python refuses in the worker, and the command waits forever for a worker that died while being started
(its inputs half-sent down a pipe). The script is read before any worker starts, so the mistake is named
with its line instead.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


class UnguardedScript(RuntimeError):
    """Worker processes were asked for by a script's top level, outside ``if __name__ == "__main__":``."""


def require_main_guard() -> None:
    """Raise :class:`UnguardedScript` if the call comes from the main script's top level, outside a block
    guarded by ``__name__``. An interactive session, ``python -c`` and the ``retention`` command pass: the
    workers do not import them again, or they are guarded."""
    place = unguarded_call()
    if place is not None:
        path, line = place
        raise UnguardedScript(
            f"{path}, line {line}: this script starts worker processes at its top level. Each worker imports "
            "the script again and would run its work anew, so the run would never finish.\n"
            '    fix: put the script\'s work under  if __name__ == "__main__":  (or run with workers=1)')


def unguarded_call() -> tuple[str, int] | None:
    """The main script and line from which this call was made at its top level, outside any ``if`` that
    tests ``__name__``; ``None`` if the call is guarded, or the main module is no file a worker imports."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return None
    # As spawn decides (multiprocessing.spawn): a package's __main__ run with -m is not imported again, nor
    # is IPython's.
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None and (name == "__main__" or name.endswith(".__main__")) \
            or Path(path).stem == "ipython":
        return None
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:  # not within the script's own top level (a thread, a callback)
        return None
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None  # nothing to read: no claim
    line = frame.f_lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and node.lineno <= line <= (node.end_lineno or node.lineno) \
                and any(isinstance(part, ast.Name) and part.id == "__name__" for part in ast.walk(node.test)):
            return None
    return str(path), line
