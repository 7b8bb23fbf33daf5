"""The ``retention`` command line: argument parsing, the console, and one function per subcommand."""

from .main import main

__all__ = ["main"]
