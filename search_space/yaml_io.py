"""YAML documents read as untrusted input: size-bounded, alias expansion bounded, no repeated
key, every failure one line naming the source (and the line, for a syntax error).

A leaf under :mod:`search_space.errors` and :mod:`search_space.io`: every config, spec and run
file that is YAML is parsed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from search_space.errors import InputError
from search_space.io import first_line, read_text_bounded, shown

__all__ = ["load_yaml", "read_yaml", "MAX_YAML_BYTES", "MAX_YAML_NODES"]

# A YAML document larger than this, or expanding (aliases counted at every use) to more nodes,
# is refused before it is built: a 9-level alias bomb expands to ~10^9 nodes from 1 kB.
MAX_YAML_BYTES = 1 << 20
MAX_YAML_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses documents expanding to more than :data:`MAX_YAML_NODES` and
    mappings that repeat a key (``channels: 8`` then ``channels: 1024`` would keep the last)."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        if _expanded_size(node, {}, MAX_YAML_NODES) > MAX_YAML_NODES:
            raise _TooLarge(f"expands to more than {MAX_YAML_NODES:,} nodes (through aliases)")
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep)


class _TooLarge(Exception):
    pass


def _expanded_size(node: Any, memo: dict[int, int], cap: int) -> int:
    """Nodes after alias expansion (an aliased node counts at every use), stopping past ``cap``."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = cap + 1  # a cycle (a recursive alias) counts as too large
    total = 1
    if isinstance(node, yaml.SequenceNode):
        children: Iterable[Any] = node.value
    elif isinstance(node, yaml.MappingNode):
        children = (n for pair in node.value for n in pair)
    else:
        children = ()
    for child in children:
        total += _expanded_size(child, memo, cap)
        if total > cap:
            break
    memo[key] = total
    return total


def load_yaml(text: str | bytes, source: str) -> Any:
    """Parse one YAML document with size and alias-expansion limits; one-line InputError."""
    if len(text) > MAX_YAML_BYTES:
        raise InputError(f"{source}: YAML document of {len(text):,} bytes; at most "
                         f"{MAX_YAML_BYTES:,} are read")
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506  (a SafeLoader subclass)
    except _TooLarge as e:
        raise InputError(f"{source}: YAML document {e}; at most {MAX_YAML_NODES:,}") from None
    except RecursionError:
        raise InputError(f"{source}: YAML document nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{source}: not valid YAML{where} ({first_line(e)})") from None


def read_yaml(path: str | Path, what: str) -> Any:
    """Read and parse a YAML file (see :func:`load_yaml`) through the bounded reader (regular
    files only, at most :data:`MAX_YAML_BYTES`); unreadable files raise InputError."""
    return load_yaml(read_text_bounded(path, what, MAX_YAML_BYTES), shown(path))
