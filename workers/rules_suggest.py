"""For a misspelt field of the rules file, the valid name it most likely meant."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel


def did_you_mean(root: type[BaseModel], location: tuple[Any, ...]) -> str:
    """The hint for an unknown field at `location` ("; did you mean 'release_pattern'?"), or "" if none is close."""
    if not location or not isinstance(location[-1], str):
        return ""
    model = _model_at(root, location[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(location[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_at(model: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return None
        if isinstance(part, int):  # a position in a list: the list's items are the model already found
            continue
        field = current.model_fields.get(part)
        current = _model_in(field.annotation) if field is not None else None
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as `Orchestration`, `tuple[ComponentRule, ...]` or `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None
