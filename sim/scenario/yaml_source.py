"""Reading a scenario file as plain YAML data, safely, with the position of every value.

A scenario is a page of settings typed by a planner, so the reader is strict where
ordinary YAML loaders are lenient:

* duplicate keys are an error (PyYAML silently keeps the last one, and a planner's
  second edit of ``budget`` would vanish);
* only plain data: no tags that construct Python objects, one document per file; a
  core tag (``!!int``, ``!!float``, ``!!bool``, ...) on a value it does not fit is a located
  error, and a date-like text (``2027-01-01``) stays text, since no scenario field is a date;
* an alias that refers back into its own anchor (a list holding itself) is a located
  error, not endless recursion;
* a hostile or broken file fails fast and in bounded time and memory: a size cap
  checked before reading, binary content, nesting depth and the size of the data
  after alias expansion (the "billion laughs") are all checked before anything is
  built;
* numbers written the way people write them (``1e6``, ``2.5e-3``) are numbers, as
  in YAML 1.2, not the strings YAML 1.1 makes of them.

The result is the data (dicts, lists, scalars) and a map from key path to line and
column, so that later validation can point at the place of each mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import KeyPath, Problem, ScenarioError

MAX_FILE_BYTES = 5 * 1024 * 1024
"""A scenario is settings, not data: customer tables are read from CSV/Parquet instead."""
MAX_DEPTH = 40
"""The deepest scenario section is about six levels; 40 leaves room and stops recursion bombs."""
MAX_VALUES = 100_000
"""Values after alias expansion; a large scenario has a few thousand."""

_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge")
}
"""Tags a scenario may state explicitly: the core schema's plain data. (``!!timestamp`` constructs a
date, which no scenario field is.)"""

_SCALAR_KINDS = {
    "tag:yaml.org,2002:int": ("a whole number", "write a whole number, e.g. 12"),
    "tag:yaml.org,2002:float": ("a number", "write a number, e.g. 0.25 or 1e6"),
    "tag:yaml.org,2002:bool": ("true or false", "write true or false"),
    "tag:yaml.org,2002:null": ("an empty value", "leave the value empty, or write null"),
}
"""Scalar tags whose constructor can refuse the text, with what the tag asks for and how to write it."""
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_COLLECTION_TAGS = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}

Position = tuple[int, int]
"""1-based (line, column)."""


class _ScenarioLoader(yaml.SafeLoader):
    """SafeLoader that reads ``1e6`` as a float (YAML 1.2 style)."""


_ScenarioLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass(frozen=True)
class YamlDocument:
    """A scenario file's data with the place of every value in it."""

    file: str
    data: Any
    value_positions: dict[KeyPath, Position]
    """Where each value starts."""
    key_positions: dict[KeyPath, Position]
    """Where the key of each mapping entry starts (absent for list items)."""

    def position(self, path: KeyPath, *, key: bool = False) -> Position | None:
        """The place of ``path``, or of its nearest ancestor that exists in the file."""
        table = self.key_positions if key else self.value_positions
        probe = tuple(path)
        while True:
            if probe in table:
                return table[probe]
            if probe in self.value_positions:
                return self.value_positions[probe]
            if not probe:
                return None
            probe = probe[:-1]


def _problem(file: str, message: str, hint: str = "", mark: Any = None, path: KeyPath = ()) -> Problem:
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return Problem(file, line, column, path, message, hint)


def _line_of_offset(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def _decode(file: str, raw: bytes) -> str:
    if b"\x00" in raw[:65536]:
        line = _line_of_offset(raw, raw.index(b"\x00"))
        raise ScenarioError([Problem(file, line, None, (), "this is not a text file (it contains NUL bytes)",
                                     "give the path of a YAML scenario, e.g. scenarios/baseline.yaml")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = _line_of_offset(raw, exc.start)
        raise ScenarioError([Problem(file, line, None, (), f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                                     "save the file as UTF-8 (most editors offer it under 'Save with encoding')")])
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise ScenarioError([Problem(file, None, None, (), "the file is empty",
                                     "start from a shipped scenario, e.g. copy scenarios/small.yaml")])
    return text


def _scan_events(file: str, text: str) -> None:
    """Check depth, tags and document count on the event stream, before any tree is built.

    PyYAML's parser is a state machine, so this pass cannot itself be driven into
    deep recursion; the composer that comes after it is recursive, hence the check first.
    """
    depth = 0
    documents = 0
    try:
        for event in yaml.parse(text, Loader=_ScenarioLoader):
            tag = getattr(event, "tag", None)
            if tag is not None and tag not in _PLAIN_TAGS and tag != "!":
                raise ScenarioError([_problem(
                    file, f"the tag '{_short_tag(tag)}' is not allowed: a scenario holds plain data only",
                    "remove the tag (anything starting with '!'); quote the value if it is text", event.start_mark)])
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ScenarioError([_problem(
                        file, f"the data is nested more than {MAX_DEPTH} levels deep",
                        "a scenario needs at most a handful of levels; check the indentation", event.start_mark)])
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise ScenarioError([_problem(
                        file, "the file holds more than one YAML document ('---')",
                        "keep one scenario per file; split the others into files of their own", event.start_mark)])
    except yaml.YAMLError as exc:
        raise ScenarioError([_syntax_problem(file, exc)]) from None


def _syntax_problem(file: str, exc: yaml.YAMLError) -> Problem:
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None) or ""
    hint = "check the indentation and the ':' after each key; text with ': ' or '#' in it needs quotes"
    if "\\t" in what or "\t" in what or "tab" in what.lower():
        hint = "indent with spaces, not tabs"
    if context.startswith("while parsing a flow") and context_mark is not None and problem_mark is not None:
        # An unclosed '[' or '{': the parser notices lines later; the planner needs the opening line.
        bracket = "[" if "sequence" in context else "{"
        closer = "]" if bracket == "[" else "}"
        message = (f"YAML syntax error: the '{bracket}' opened here is not closed "
                   f"(the parser stopped at line {problem_mark.line + 1}: {what})")
        return _problem(file, message, f"close the list with '{closer}' on the same line, or check the commas",
                        context_mark)
    message = f"YAML syntax error: {what}" + (f" ({context})" if context else "")
    return _problem(file, message, hint, problem_mark or context_mark)


class _Builder:
    """Turns the composed node tree into data, recording positions and counting values."""

    def __init__(self, file: str, loader: _ScenarioLoader) -> None:
        self.file = file
        self.loader = loader
        self.values = 0
        self.value_positions: dict[KeyPath, Position] = {}
        self.key_positions: dict[KeyPath, Position] = {}
        self.problems: list[Problem] = []
        self.open_nodes: set[int] = set()
        """Collections being built on the way down to the current value: meeting one again is a loop."""

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise ScenarioError([_problem(
                self.file, f"the data expands to more than {MAX_VALUES:,} values (anchors and aliases '*' included)",
                "remove the repeated aliases; a scenario needs a few thousand values at most", node.start_mark)])
        self.value_positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if node.tag != _COLLECTION_TAGS[type(node)]:
            kind = "mapping" if isinstance(node, yaml.MappingNode) else "list"
            self.problems.append(_problem(
                self.file, f"the tag '{_short_tag(node.tag)}' does not fit a {kind}",
                "remove the tag", node.start_mark, path))
            return None
        if id(node) in self.open_nodes:
            # An alias inside its own anchor: the data would contain itself, without end.
            raise ScenarioError([_problem(
                self.file, f"an alias (*NAME) here refers back to the anchor (&NAME) on line {node.start_mark.line + 1}, "
                           "which contains it: the data would contain itself without end",
                "replace the alias with the values it should repeat, or anchor a part that does not contain it",
                self._alias_mark(node, path), path)])
        self.open_nodes.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self.open_nodes.discard(id(node))

    def _alias_mark(self, node: yaml.Node, path: KeyPath) -> Any:
        """Where the alias that closes the loop is written. A node keeps only its anchor's place, so this
        is the key the alias is the value of (or, for a list item, the anchor itself)."""
        line, column = self.key_positions.get(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        return yaml.Mark("", 0, line - 1, column - 1, None, None)

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag in (_TIMESTAMP, "tag:yaml.org,2002:str"):
            # A date-like text (2027-01-01) is only reached here implicitly (the event scan refuses an
            # explicit !!timestamp); no field is a date, so it stays the text the planner wrote.
            return node.value
        kind = _SCALAR_KINDS.get(node.tag)
        if kind is None:
            self.problems.append(_problem(
                self.file, f"the tag '{_short_tag(node.tag)}' does not fit a single value",
                "remove the tag", node.start_mark, path))
            return None
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError, yaml.YAMLError):
            # The core constructors assume the resolver chose the tag; a tag written by hand
            # (!!int many) reaches them with text they cannot read.
            what, hint = kind
            text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            self.problems.append(_problem(
                self.file, f"'{text}' is not {what}, as the tag '{_short_tag(node.tag)}' says it is",
                hint + " (or remove the tag)", node.start_mark, path))
            return None

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        try:
            self.loader.flatten_mapping(node)
        except RecursionError:
            # Merges ('<<: *x') that merge one another: reported, not followed.
            raise ScenarioError([_problem(
                self.file, "the merges '<<' here refer back to the mapping that holds them",
                "write the keys out instead of merging", node.start_mark, path)]) from None
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(_problem(self.file, "a key must be a plain name, not a list or mapping",
                                              "write the key as text before the ':'", key_node.start_mark, path))
                continue
            # The key's own text, so that a tier called `no` or `on` stays a name, not a boolean.
            key = key_node.value
            if key in first_seen:
                first_line = first_seen[key].start_mark.line + 1
                self.problems.append(_problem(
                    self.file, f"duplicate key '{key}' (first given on line {first_line})",
                    "keep one of the two entries; YAML would silently drop the first", key_node.start_mark,
                    path + (key,)))
                continue
            first_seen[key] = key_node
            self.key_positions[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, path + (key,))
        return result


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def read_yaml(path: str | Path, *, display_name: str | None = None) -> YamlDocument:
    """Read a scenario file as plain data with positions; raise :class:`ScenarioError` if it is not usable YAML."""
    file = display_name or str(path)
    p = Path(path)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise ScenarioError([Problem(file, None, None, (), "this is a folder, not a scenario file",
                                         "give the path of a .yaml file inside it")])
        if size > MAX_FILE_BYTES:
            raise ScenarioError([Problem(
                file, None, None, (),
                f"the file is {size / 1e6:.1f} MB; a scenario is at most {MAX_FILE_BYTES // (1024 * 1024)} MB",
                "keep customer tables in CSV/Parquet and point the scenario at them")])
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError([Problem(file, None, None, (), "no such file",
                                     "check the path; shipped scenarios are in scenarios/")]) from None
    except PermissionError:
        raise ScenarioError([Problem(file, None, None, (), "the file cannot be read (permission denied)",
                                     "check the file's permissions")]) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(file, None, None, (), "this is a folder, not a scenario file",
                                     "give the path of a .yaml file inside it")]) from None
    return parse_yaml(raw, file)


def parse_yaml(raw: bytes, file: str) -> YamlDocument:
    """Parse scenario bytes (see :func:`read_yaml`); ``file`` names them in messages."""
    text = _decode(file, raw)
    _scan_events(file, text)
    loader = _ScenarioLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError([Problem(file, None, None, (), "the file is empty",
                                         "start from a shipped scenario, e.g. copy scenarios/small.yaml")])
        builder = _Builder(file, loader)
        data = builder.build(node, ())
    except yaml.YAMLError as exc:
        raise ScenarioError([_syntax_problem(file, exc)]) from None
    finally:
        loader.dispose()
    if builder.problems:
        raise ScenarioError(builder.problems)
    if not isinstance(data, dict):
        raise ScenarioError([_problem(file, f"the top level must be a mapping of sections (meta:, tiers:, ...), "
                                            f"not {type(data).__name__}",
                                      "start from a shipped scenario, e.g. copy scenarios/small.yaml", node.start_mark)])
    return YamlDocument(file, data, builder.value_positions, builder.key_positions)
