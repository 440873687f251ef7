"""JSON Schema checks as OpenAPI 3.0 and 3.1 use them (the part of `tests.support.spec` that
reads values, not documents).

Checked: `type` (3.1 type lists too), `required`, `properties`, `additionalProperties` (false,
or a schema), `enum`/`const`, `items`, `allOf`/`anyOf`/`oneOf` (with `discriminator`),
`nullable`, and `$ref` through the owning document. Request bodies must not carry `readOnly`
properties and responses no `writeOnly` ones (the OpenAPI rule); formats, patterns and lengths
are not checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

JSON = Any
_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "null": type(None),
}


class SchemaRules:
    """Checks values against schemas of one document.

    Args:
        resolve: follows a `$ref` of the document to the node it names.
        v31: OpenAPI 3.1, where a `$ref`'s sibling keywords apply too.
    """

    def __init__(self, resolve: Callable[[Any], Any], *, v31: bool) -> None:
        self._resolve = resolve
        self._v31 = v31

    def errors(
        self, value: JSON, schema: dict, *, direction: str | None = None, path: str = "$"
    ) -> list[str]:
        """Problems of `value` against `schema`; `direction` ("request"/"response") adds the
        readOnly/writeOnly rule."""
        return list(self._check(value, schema, path, direction))

    def _check(
        self,
        value: JSON,
        node: dict,
        path: str,
        direction: str | None,
        siblings: frozenset[str] = frozenset(),
    ) -> Iterator[str]:
        """`siblings`: property names declared by the other parts of an enclosing allOf."""
        node = self._flatten_ref(node)
        if value is None and (node.get("nullable") or self._allows_null_by_type(node)):
            return
        if node.get("allOf"):
            # Vendors close a composed object with additionalProperties:false inside one allOf
            # part (Meta: TextMessage = allOf[BaseMessageProperties, {..., false}]); read strictly,
            # no message could pass. Names any part declares count as declared for every part.
            names = siblings | self._declared_names(node)
            for part in node["allOf"]:
                yield from self._check(value, part, path, direction, names)
        if "anyOf" in node or "oneOf" in node:
            names = siblings | self._declared_names(node)
            if "anyOf" in node and not any(
                self._fits(value, alt, path, direction, names) for alt in node["anyOf"]
            ):
                yield f"{path}: matches none of anyOf ({_describe(value)})"
            if "oneOf" in node:
                yield from self._one_of(value, node, path, direction, names)
        kind = node.get("type")
        if kind is not None:
            kinds = kind if isinstance(kind, list) else [kind]
            if not any(_is(value, k) for k in kinds):
                yield f"{path}: expected {'|'.join(kinds)}, got {_describe(value)}"
                return
        elif value is None and ("enum" not in node or None not in node["enum"]) and _is_typed(node):
            yield f"{path}: null is not allowed"
            return
        if "enum" in node and value not in node["enum"]:
            yield f"{path}: {value!r} not in {node['enum']}"
        if "const" in node and value != node["const"]:
            yield f"{path}: {value!r} is not {node['const']!r}"
        if isinstance(value, dict):
            yield from self._object(value, node, path, direction, siblings)
        if isinstance(value, list) and "items" in node:
            for i, item in enumerate(value):
                yield from self._check(item, node["items"], f"{path}[{i}]", direction)

    def _object(
        self, value: dict, node: dict, path: str, direction: str | None, siblings: frozenset[str]
    ) -> Iterator[str]:
        props = node.get("properties", {})
        for name in node.get("required", []):
            if name not in value and not self._skipped(props.get(name), direction):
                yield f"{path}: missing required {name!r}"
        known = siblings | self._declared_names(node)
        extra = node.get("additionalProperties", True)
        for name, item in value.items():
            where = f"{path}.{name}"
            if name in props:
                if self._skipped(props[name], direction):
                    flag = "readOnly" if direction == "request" else "writeOnly"
                    yield f"{where}: {flag} property in a {direction}"
                yield from self._check(item, props[name], where, direction)
            elif name in known:
                continue  # declared, and checked, by another allOf part
            elif extra is False:
                yield f"{path}: unexpected property {name!r}"
            elif isinstance(extra, dict):
                yield from self._check(item, extra, where, direction)

    def _declared_names(self, node: dict) -> frozenset[str]:
        """Property names of a schema and of its allOf parts, however deep."""
        node = self._flatten_ref(node)
        names = set(node.get("properties", {}))
        for part in node.get("allOf", []):
            names |= self._declared_names(part)
        return frozenset(names)

    def _one_of(
        self, value: JSON, node: dict, path: str, direction: str | None, names: frozenset[str]
    ) -> Iterator[str]:
        discriminator = node.get("discriminator")
        if discriminator and isinstance(value, dict) and discriminator.get("propertyName") in value:
            tag = value[discriminator["propertyName"]]
            target = (discriminator.get("mapping") or {}).get(str(tag))
            if target is None:  # without a mapping the tag names the component
                target = next(
                    (
                        alt["$ref"]
                        for alt in node["oneOf"]
                        if alt.get("$ref", "").rsplit("/", 1)[-1] == str(tag)
                    ),
                    None,
                )
            if target is None:
                yield f"{path}: discriminator {discriminator['propertyName']}={tag!r} names no oneOf schema"
            else:
                yield from self._check(value, {"$ref": target}, path, direction, names)
            return
        fits = sum(self._fits(value, alt, path, direction, names) for alt in node["oneOf"])
        if fits != 1:
            yield f"{path}: matches {fits} of oneOf, not exactly one ({_describe(value)})"

    def _fits(self, value: JSON, node: dict, path: str, direction: str | None, names: frozenset[str]) -> bool:
        return next(self._check(value, node, path, direction, names), None) is None

    def _flatten_ref(self, node: dict) -> dict:
        """The schema a `$ref` points to; in 3.1 its siblings apply too (as an extra allOf)."""
        if not isinstance(node, dict) or "$ref" not in node:
            return node
        target = self._resolve(node)
        siblings = {k: v for k, v in node.items() if k != "$ref" and k not in _ANNOTATIONS}
        if not self._v31 or not siblings:
            return target
        return {"allOf": [target, siblings]}

    def _allows_null_by_type(self, node: dict) -> bool:
        kind = node.get("type")
        return kind == "null" or (isinstance(kind, list) and "null" in kind)

    def _skipped(self, prop: dict | None, direction: str | None) -> bool:
        """True for a property that must not appear in this direction (readOnly in requests)."""
        if prop is None or direction is None:
            return False
        flag = "readOnly" if direction == "request" else "writeOnly"
        if prop.get(flag):
            return True
        resolved = self._flatten_ref(prop)
        return bool(resolved.get(flag))


_ANNOTATIONS = {"description", "summary", "title", "example", "examples", "deprecated", "default"}


def _is(value: JSON, kind: str) -> bool:
    if kind not in _TYPES:
        return True  # an unknown type word is the spec's problem, not the body's
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[kind])


def _is_typed(node: dict) -> bool:
    return any(k in node for k in ("enum", "const", "properties", "items"))


def _describe(value: JSON) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return f"{type(value).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"
