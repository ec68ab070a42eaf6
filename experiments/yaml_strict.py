"""A strict YAML reader for manifests: YAML 1.2 scalars, no tags, no duplicate keys, line numbers.

PyYAML's ``safe_load`` follows YAML 1.1: ``lr: 1e-3`` becomes the *string* ``'1e-3'``, ``env: no``
becomes ``False`` and a duplicated key silently keeps the last value. This reader composes the
node tree with PyYAML and builds values itself, so that:

* booleans are only ``true``/``false``; ``yes``/``no``/``on``/``off`` stay strings;
* ``1e-3``, ``3.0E+2`` and ``.5`` are floats; ``0o17`` and ``0x1f`` are ints;
* ``.nan``/``.inf`` and any explicit tag (``!!python/object`` …) are errors;
* every value's line is kept, so errors can say ``manifest.yaml:12``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ManifestSyntaxError", "load_yaml", "parse_override", "parse_scalar"]

_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$|^0o[0-7_]+$|^0x[0-9a-fA-F_]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")
_NONFINITE = re.compile(r"^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$|^[-+]?(nan|inf|infinity)$", re.IGNORECASE)


class ManifestSyntaxError(ValueError):
    """A YAML problem, with file and line in the message."""


class _Loader(yaml.SafeLoader):
    """Composes nodes only; implicit resolution is done by :func:`parse_scalar`."""

    def compose_node(self, parent, index):
        # PyYAML gives a node written with a core tag (!!str 5) the same tag as an untagged one;
        # keep what was written so that _build can refuse every tag, the core ones and ! included
        written = getattr(self.peek_event(), "tag", None)
        node = super().compose_node(parent, index)
        if written is not None:
            node.written_tag = written
        return node


_Loader.yaml_implicit_resolvers = {}


def parse_scalar(text: str, where: str = "value") -> Any:
    """A plain scalar with YAML 1.2 core-schema rules (used for ``--set key=value`` too)."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _NONFINITE.match(text):
        raise ManifestSyntaxError(f"{where}: non-finite number {text!r} is not allowed")
    if _INT.match(text):
        return int(text.replace("_", ""), 0) if text[:2] in ("0o", "0x") else int(text.replace("_", ""))
    if _FLOAT.match(text) and any(c.isdigit() for c in text):
        return float(text.replace("_", ""))
    return text


def _where(source: str, node: yaml.Node) -> str:
    return f"{source}:{node.start_mark.line + 1}"


def _build(node: yaml.Node, source: str, path: str, lines: dict[str, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    written = getattr(node, "written_tag", None)  # with no implicit resolvers, every other tag is a default
    if written is not None:
        tag = written.replace("tag:yaml.org,2002:", "!!")
        raise ManifestSyntaxError(f"{_where(source, node)}: {path or 'document'}: YAML tag {tag!r} "
                                  "is not allowed in a manifest; write a plain value")
    if isinstance(node, yaml.ScalarNode):
        if node.style in ("'", '"'):
            return node.value
        return parse_scalar(node.value, f"{_where(source, node)}: {path}")
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, source, f"{path}.{i}" if path else str(i), lines) for i, item in enumerate(node.value)]
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise ManifestSyntaxError(f"{_where(source, key_node)}: keys must be plain strings")
        key = key_node.value
        if key == "<<":
            raise ManifestSyntaxError(f"{_where(source, key_node)}: YAML merge keys ('<<') are not supported")
        child = f"{path}.{key}" if path else key
        if key in out:
            raise ManifestSyntaxError(
                f"{_where(source, key_node)}: duplicate key {child!r} (first at line {lines[child]}); keep one"
            )
        out[key] = _build(value_node, source, child, lines)
    return out


def parse_override(text: str, field: str) -> Any:
    """A ``--set field=text`` value: a plain scalar (:func:`parse_scalar`), or a YAML flow collection
    (``[...]`` or ``{...}``, nested as deep as needed) under the manifest's rules: YAML 1.2 scalars, no
    tags, no duplicate keys. Errors name ``--set`` and the dotted ``field``."""
    if not text.startswith(("[", "{")):
        return parse_scalar(text, f"--set {field}")
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err)
        raise ManifestSyntaxError(f"--set {field}: invalid YAML: {problem}") from None
    return _build(node, "--set", field, {})


def load_yaml(path: Path | str, text: str | None = None) -> tuple[Any, dict[str, int]]:
    """Parse a manifest file into plain Python values plus ``{dotted path: line}``."""
    source = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestSyntaxError(f"{source}: no such file") from None
        except IsADirectoryError:
            raise ManifestSyntaxError(f"{source}: is a directory, expected a YAML manifest") from None
        except UnicodeDecodeError as err:
            raise ManifestSyntaxError(f"{source}: not UTF-8 text ({err.reason})") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ManifestSyntaxError(f"{source}{line}: invalid YAML: {problem}") from None
    if len(nodes) != 1:
        raise ManifestSyntaxError(f"{source}: expected exactly one YAML document, found {len(nodes)}")
    lines: dict[str, int] = {}
    data = _build(nodes[0], source, "", lines)
    if not isinstance(data, dict):
        raise ManifestSyntaxError(f"{source}: the manifest must be a mapping of fields")
    return data, lines
