"""Load YAML while remembering the line of every key, so validation errors can point at `file:line`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from morphcpt.errors import ConfigError

KeyPath = tuple[str | int, ...]


@dataclass
class YamlSource:
    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, loc: KeyPath) -> int | None:
        """Line of the deepest key of `loc` present in the file (pydantic locations may hold extra parts)."""
        best: int | None = None
        found: KeyPath = ()
        for part in loc:
            candidate = (*found, part)
            if candidate in self.lines:
                found = candidate
                best = self.lines[candidate]
        return best

    def file_path_of(self, loc: KeyPath) -> KeyPath:
        """`loc` without the parts that are not keys of the file (pydantic adds union tags such as 'patok')."""
        kept: KeyPath = ()
        for index, part in enumerate(loc):
            if (*kept, part) in self.lines or index == len(loc) - 1:
                kept = (*kept, part)
        return kept


def _record_lines(node: yaml.Node, prefix: KeyPath, lines: dict[KeyPath, int], path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            line = key_node.start_mark.line + 1
            if str(key_node.value) in seen:
                # YAML keeps the last of two equal keys without a word; a config must not.
                name = ".".join(str(p) for p in key)
                raise ConfigError(
                    f"{path}:{line}: {name}: duplicate key (also at line {seen[str(key_node.value)]}); keep one"
                )
            seen[str(key_node.value)] = line
            lines[key] = line
            _record_lines(value_node, key, lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = (*prefix, index)
            lines[key] = item.start_mark.line + 1
            _record_lines(item, key, lines, path)


def load_yaml(path: Path) -> YamlSource:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines, path)
    return YamlSource(path=path, data=data, lines=lines)
