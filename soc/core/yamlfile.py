"""Load a YAML file into a pydantic model, with errors that name the file, the key and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from soc.core.errors import SocError

Model = TypeVar("Model", bound=BaseModel)


def read_yaml(path: Path, error: type[SocError]) -> tuple[Any, yaml.Node | None]:
    """The parsed document and its node tree (for line numbers)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read: {exc}", path=str(path)) from None
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=str(path),
                    line=mark.line + 1 if mark else None) from None


def validate(model: type[Model], data: Any, root: yaml.Node | None, path: Path, error: type[SocError],
             extra: dict[str, Any] | None = None) -> Model:
    if not isinstance(data, dict):
        raise error("the top level must be a mapping of keys", path=str(path), line=1)
    try:
        return model.model_validate({**data, **(extra or {})})
    except ValidationError as exc:
        raise validation_error(exc, data, root, path, error) from None


def validation_error(exc: ValidationError, data: Any, root: yaml.Node | None, path: Path | None,
                     error: type[SocError], prefix: tuple[Any, ...] = ()) -> SocError:
    """The first problem of ``exc`` as ``error``, naming the key and its line; ``prefix`` is where the validated
    part sits in the document (a plug-in's section)."""
    first = exc.errors()[0]
    loc = data_path(data, (*prefix, *first["loc"]), keep_missing=first["type"] == "missing")
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return error(f"{first['msg']}{more}", path=str(path) if path else None, line=line_of(root, loc),
                 key=".".join(str(p) for p in loc))


def load_model(model: type[Model], path: Path, error: type[SocError], extra: dict[str, Any] | None = None) -> Model:
    data, root = read_yaml(path, error)
    return validate(model, {} if data is None else data, root, path, error, extra)


def data_path(data: Any, loc: tuple[Any, ...], keep_missing: bool = False) -> tuple[Any, ...]:
    """The part of a pydantic error location that exists in the file (unions add validator and tag names after
    it); with ``keep_missing``, the missing key itself is kept as the last part."""
    path: list[Any] = []
    node = data
    for part in loc:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        )
        if present:
            node = node[part]
        else:
            if keep_missing and isinstance(node, dict):
                path.append(part)
            break
        path.append(part)
    return tuple(path)


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node along ``loc`` that exists in the document."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    child, line = value_node, key_node.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
