"""A YAML file read once, with libyaml, keeping each node's line for messages.

PyYAML's pure-Python parser took 13 s for a 1,000-camera config (it was also parsed twice: once
for the data, once for the lines); libyaml's parser composes the same nodes in a fraction of it.
A key written twice in one mapping is an error here, not the silent "last one wins" of YAML
loaders: in an inventory it almost always means an entry was copied and half edited.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[int | str, ...]
MERGE_TAG = "tag:yaml.org,2002:merge"
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _keys(node: yaml.MappingNode) -> list[tuple[str, int]]:
    """The mapping's plain keys (merge keys aside) and their lines."""
    return [
        (k.value, k.start_mark.line + 1)
        for k, _ in node.value
        if isinstance(k, yaml.ScalarNode) and k.tag != MERGE_TAG
    ]


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """libyaml's loader noting each mapping that holds a key twice, as it builds it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.twice: list[yaml.MappingNode] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if len(node.value) > 1 and len({k for k, _ in _keys(node)}) < len(_keys(node)):
            self.twice.append(node)
        built: dict[Any, Any] = super().construct_mapping(node, deep)
        return built


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where (the key path and, when known, the line) and what."""

    loc: Loc
    message: str
    line: int | None = None
    other: Loc | None = None  # the entry it clashes with, named by its line


class YamlError(ValueError):
    """The file cannot be read as YAML at all: unreadable, too large or not YAML."""


@dataclass(frozen=True)
class YamlSource:
    path: Path
    data: Any
    root: yaml.Node | None
    twice: tuple[yaml.MappingNode, ...] = ()  # mappings with a key written twice

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest node on a key path (the item itself when the key is absent)."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                break
            if node is None:
                break
            line = node.start_mark.line + 1
        return line


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic collector rescans every object made so far as the tree grows, which made checking
    a config quadratic in its size: off while a config is read and validated (nothing there is a cycle)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_yaml(path: Path, max_bytes: int) -> YamlSource:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise YamlError(
                f"{path}: {size / 1e6:.1f} MB, more than the {max_bytes / 1e6:g} MB a config may have "
                "(a 1,000-camera site takes about 0.2 MB): is this the right file?"
            )
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise YamlError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError as exc:
        raise YamlError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise YamlError(f"{path}: {exc.strerror}") from None
    loader = _Loader(text)
    try:
        with no_gc():
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise YamlError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    finally:
        loader.dispose()
    return YamlSource(path, data, root, tuple(loader.twice))


def _loc_of(root: yaml.Node, target: yaml.Node) -> Loc:
    """The key path to a node (searched: only ever asked for the few mappings with a problem)."""
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if node is target:
            return loc
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, (*loc, i)) for i, child in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            stack.extend((v, (*loc, k.value)) for k, v in node.value if isinstance(k, yaml.ScalarNode))
    return ()


def duplicate_keys(source: YamlSource) -> list[Problem]:
    """Every key written twice in one mapping, at its second line, naming the first."""
    problems: list[Problem] = []
    for mapping in source.twice:
        loc = _loc_of(source.root, mapping) if source.root is not None else ()
        first: dict[str, int] = {}
        for key, line in _keys(mapping):
            if key in first:
                message = f"key written twice in one mapping (first on line {first[key]})"
                problems.append(Problem((*loc, key), message, line))
            else:
                first[key] = line
    return problems
