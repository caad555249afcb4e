"""The author's contract, discovered from ``lifecycle/hookspecs.py`` itself.

Every public top-level name the module defines (classes, the type alias, constants, the
markers), every public method of those classes, and every hook of ``Hookspecs`` is an item.
Each item has one exact signature, rendered from the code; AUTHORING.md must carry it as a
heading, and a test must claim the item with ``@pytest.mark.covers(NAME)``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lifecycle import hookspecs

SOURCE = Path(inspect.getfile(hookspecs))


@dataclass(frozen=True)
class Item:
    """One documented part of the contract: its key (as tests name it) and its signature."""

    key: str
    signature: str

    @property
    def heading(self) -> str:
        """The Markdown heading AUTHORING.md must contain."""
        return f"### `{self.signature}`"


def items() -> list[Item]:
    """Every item of the contract, in source order."""
    return list(_items())


def _items() -> Iterator[Item]:
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    source = SOURCE.read_text(encoding="utf-8")
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            cls = getattr(hookspecs, node.name)
            yield Item(node.name, _class_signature(cls))
            if node.name == "Hookspecs":
                yield from _hooks(cls)
                continue
            for name, member in vars(cls).items():
                if name.startswith("_") or isinstance(member, property):
                    continue
                if callable(member) or isinstance(member, classmethod | staticmethod):
                    yield Item(f"{node.name}.{name}",
                               f"{node.name}.{name}{_params(getattr(cls, name))}")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and not target.id.startswith("_"):
                    value = ast.get_source_segment(source, node.value)
                    yield Item(target.id, f"{target.id} = {value}")


def _hooks(cls: type) -> Iterator[Item]:
    for name, member in vars(cls).items():
        if getattr(member, f"{hookspecs.PROJECT_NAME}_spec", None) is not None:
            yield Item(name, f"{name}{_params(member, drop_first=True)}")


def _class_signature(cls: type) -> str:
    if dataclasses.is_dataclass(cls):
        parts = []
        for f in dataclasses.fields(cls):
            text = f"{f.name}: {f.type}"
            if f.default is not dataclasses.MISSING:
                text += f" = {f.default!r}"
            elif f.default_factory is not dataclasses.MISSING:
                text += f" = {f.default_factory()!r}"
            parts.append(text)
        return f"{cls.__name__}({', '.join(parts)})"
    if Protocol in getattr(cls, "__mro__", ()) or getattr(cls, "_is_protocol", False):
        return f"class {cls.__name__}(Protocol)"
    return f"class {cls.__name__}"


def _params(func: Any, *, drop_first: bool = False) -> str:
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    if drop_first or (params and params[0].name in ("self", "cls")):
        params = params[1:] if params and params[0].name in ("self", "cls") else params
    parts: list[str] = []
    star_done = False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}: {p.annotation}")
            continue
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}: {p.annotation}")
            star_done = True
            continue
        text = p.name if p.annotation is p.empty else f"{p.name}: {p.annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    ret = "" if sig.return_annotation is sig.empty else f" -> {sig.return_annotation}"
    return f"({', '.join(parts)}){ret}"
