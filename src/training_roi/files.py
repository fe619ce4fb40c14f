"""Reading the small files a user hands the product (studies, mappings, lists they name), within bounds.

A study or a mapping may come from someone else. What it makes the product read must stay where
the user expects: a file a study names is read only from the study's own folder (or below it),
unless the user allows otherwise; only regular files are read (never ``/dev/zero`` or a pipe);
and each read is capped in size. A YAML document whose aliases expand beyond a bound is refused
before it is built, so a few lines that stand for gigabytes (a "billion laughs") cannot exhaust memory.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_NAMED_FILE_BYTES", "MAX_NODES", "MAX_YAML_BYTES", "FileRefused", "load_yaml", "parse_yaml",
           "read_named_file", "skill_map_rows"]

MAX_YAML_BYTES = 1 << 20
"""A study or mapping larger than 1 MiB is not a study or mapping."""

MAX_NAMED_FILE_BYTES = 64 << 20
"""A list a study names (a holdout of CRM ids) larger than 64 MiB is refused."""

MAX_NODES = 100_000
"""Values a YAML document may stand for once its aliases (``*name``) are expanded: a study has hundreds."""


class FileRefused(ValueError):
    """A file the product will not read, with the reason in words."""


def _expanded_size(node: yaml.Node) -> int:
    """How many nodes ``node`` stands for once every alias is expanded (shared nodes counted each time)."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = 1  # a node that contains itself (a recursive alias) counts once
        if isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in n.value)
        elif isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        else:
            total = 1
        sizes[id(n)] = total
        return total

    return size(node)


def _regular(path: Path, limit: int) -> None:
    if not path.exists():
        raise FileRefused(f"{path}: no such file")
    if not path.is_file():
        raise FileRefused(f"{path}: not a regular file (a folder, device or pipe is never read)")
    size = path.stat().st_size
    if size > limit:
        raise FileRefused(f"{path}: {size:,} bytes, more than the {limit:,} allowed")


def load_yaml(path: Path) -> Any:
    """Parse a small YAML file safely: regular file, at most :data:`MAX_YAML_BYTES`, bounded aliases.

    Raises
    ------
    FileRefused
        The file is not a regular file, is too large, or its aliases expand too far.
    yaml.YAMLError, UnicodeDecodeError
        The text is not YAML, or not UTF-8.
    """
    _regular(path, MAX_YAML_BYTES)
    with path.open("rb") as fh:
        text = fh.read(MAX_YAML_BYTES + 1).decode("utf-8")
    return parse_yaml(text, str(path))


def parse_yaml(text: str, label: str) -> Any:
    """Parse small YAML text safely: at most :data:`MAX_YAML_BYTES`, bounded aliases, no Python tags.

    For a document sent rather than read from a file (a study posted to the server); ``label``
    names it in messages, as a file's path would.

    Raises
    ------
    FileRefused
        The text is too large, or its aliases expand too far.
    yaml.YAMLError
        The text is not YAML.
    """
    size = len(text.encode("utf-8"))
    if size > MAX_YAML_BYTES:
        raise FileRefused(f"{label}: {size:,} bytes, more than the {MAX_YAML_BYTES:,} allowed")
    loader = yaml.SafeLoader(text)  # no Python tags
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if (expanded := _expanded_size(node)) > MAX_NODES:
            raise FileRefused(f"{label}: its YAML aliases (*name) expand to {expanded:,} values, more than the "
                              f"{MAX_NODES:,} allowed")
        return loader.construct_document(node)
    except RecursionError as exc:  # PyYAML composes nested values recursively
        raise FileRefused(f"{label}: its values are nested too deeply to be settings") from exc
    finally:
        loader.dispose()


def read_named_file(base: Path, name: str, *, allow_outside: bool = False) -> str:
    """The text of file ``name`` that a document in folder ``base`` names, confined to ``base``.

    ``name`` is relative to ``base``; after resolving links and ``..`` it must lie inside
    ``base`` unless ``allow_outside``. The file must be regular and at most
    :data:`MAX_NAMED_FILE_BYTES`; a UTF-8 BOM is dropped.

    Raises
    ------
    FileRefused
        The file lies outside ``base``, is not a regular file, is too large or is not UTF-8.
    """
    root = base.resolve()
    path = (root / name).resolve()
    if not allow_outside and not path.is_relative_to(root):
        raise FileRefused(f"{name}: outside the study's folder {root}; copy the file next to the study "
                          "(files elsewhere are read only when allowed explicitly)")
    _regular(path, MAX_NAMED_FILE_BYTES)
    with path.open("rb") as fh:
        data = fh.read(MAX_NAMED_FILE_BYTES + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def skill_map_rows(text: str, name: str) -> dict[str, str]:
    """A skill map's rows (a CSV of ``activity_id,skill``) as activity id → skill.

    A bad row raises ValueError naming the file, its line and the field.
    """
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["activity_id", "skill"]:
        raise ValueError(f"skills_file: {name} line 1 must be the header activity_id,skill")
    out: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip():
            raise ValueError(f"skills_file: {name} line {line}: field activity_id is empty")
        if not row[1].strip():
            raise ValueError(f"skills_file: {name} line {line}: field skill is empty")
        activity, skill = row[0].strip(), row[1].strip()
        if out.get(activity, skill) != skill:
            raise ValueError(f"skills_file: {name} line {line}: activity {activity} is tagged both "
                             f"{out[activity]!r} and {skill!r}")
        out[activity] = skill
    if not out:
        raise ValueError(f"skills_file: {name} has no rows after its header")
    return out
