"""A small OpenAPI checker: is this request or response body what the vendor's spec describes?

Load a spec (JSON or YAML, OpenAPI 3.0 or 3.1), find the operation for a method and a URL by
matching path templates, and validate a body against the operation's request schema or the
response schema for a status. Schemas are checked for `type` (3.1 type lists too), `required`,
`properties`, `additionalProperties` (false, or a schema), `enum`/`const`, `items`,
`allOf`/`anyOf`/`oneOf` (with `discriminator`), `nullable`, and `$ref` anywhere in the document.
Request bodies must not carry `readOnly` properties and responses no `writeOnly` ones (the
OpenAPI rule); formats, patterns and lengths are not checked.

    spec = load_spec(SPECS / "jira-platform-v3.openapi.json")
    assert spec.request_errors("POST", url, body) == []
    assert spec.response_errors("POST", url, 201, answer) == []
    assert spec.errors(value, spec.component("ErrorCollection")) == []

Every check returns a list of readable problems (`$.fields.labels[0]: expected string, got int 7`),
empty when the value fits; a question the spec cannot answer (no such operation, no schema for
that status) raises `SpecLookupError` instead, so a typo never passes as "no problems".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

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
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class SpecLookupError(LookupError):
    """The spec has no operation, request body or response schema for what was asked."""


@lru_cache(maxsize=8)
def load_spec(path: str | Path) -> OpenAPISpec:
    """Parse a spec file once per process (YAML by suffix, JSON otherwise)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml  # only YAML specs need it

        # The C loader when libyaml is there: vendor specs run to megabytes.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return OpenAPISpec(yaml.load(text, Loader=loader))  # noqa: S506 - a safe loader
    return OpenAPISpec(json.loads(text))


@dataclass(frozen=True)
class Operation:
    """One (method, path template) of the spec, with the path parameters of a matched URL."""

    spec: OpenAPISpec
    method: str
    template: str
    params: dict[str, str]
    node: dict

    def request_schema(self) -> dict | None:
        body = self.spec.resolve(self.node.get("requestBody") or {})
        return _json_schema(body.get("content"))

    def response_schema(self, status: int) -> dict | None:
        """The schema for `status` (exact code, then `4XX`-style range, then `default`).

        None when the spec lists the status without a JSON body; SpecLookupError when the
        status is not listed at all.
        """
        responses = self.node.get("responses") or {}
        for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
            if key in responses:
                return _json_schema(self.spec.resolve(responses[key]).get("content"))
        raise SpecLookupError(f"{self.method} {self.template} declares no response {status}")

    def declares(self, status: int) -> bool:
        try:
            self.response_schema(status)
        except SpecLookupError:
            return False
        return True

    def query_errors(self, query: dict[str, str] | str) -> list[str]:
        """Query parameters the operation does not define, or values outside their schema.

        Values are strings on the wire: integers and booleans are parsed, arrays are split on
        commas (Jira's and Graph's convention), then checked like a body.
        """
        pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query.items())
        declared: dict[str, dict] = {}
        for param in [
            *self.spec.path_item(self.template).get("parameters", []),
            *self.node.get("parameters", []),
        ]:
            param = self.spec.resolve(param)
            if param.get("in") == "query":
                declared[param["name"]] = self.spec.resolve(param.get("schema") or {})
        problems = []
        for name, raw in pairs:
            if name not in declared:
                problems.append(f"?{name}: not a query parameter of {self.method} {self.template}")
                continue
            schema = declared[name]
            problems += self.spec.errors(_from_query(raw, schema, self.spec.resolve), schema, path=f"?{name}")
        return problems


class OpenAPISpec:
    """A parsed OpenAPI document and the checks against it.

    Args:
        document: the spec as loaded from JSON or YAML.
    """

    def __init__(self, document: dict) -> None:
        self.document = document
        self._v31 = str(document.get("openapi", "3.0")).startswith("3.1")
        # Servers may carry a base path (`https://host/api`) that the `paths` leave out.
        self._base_paths = sorted(
            {urlsplit(s.get("url", "")).path.rstrip("/") for s in document.get("servers", [])} - {""},
            key=len,
            reverse=True,
        )
        self._templates = [(_template_regex(t), t) for t in document.get("paths", {})]

    # -- lookups ----------------------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        """Follow `$ref` (local JSON pointers) until a node without one."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise SpecLookupError(f"circular $ref {ref}")
            seen.add(ref)
            if not ref.startswith("#/"):
                raise SpecLookupError(f"only local $refs are supported, not {ref}")
            target: Any = self.document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                try:
                    target = target[part]
                except (KeyError, TypeError):
                    raise SpecLookupError(f"$ref {ref} points nowhere") from None
            node = target
        return node

    def component(self, name: str) -> dict:
        """`#/components/schemas/{name}`."""
        return self.resolve({"$ref": f"#/components/schemas/{name}"})

    def path_item(self, template: str) -> dict:
        return self.resolve(self.document["paths"][template])

    def operation(self, method: str, url: str) -> Operation:
        """The operation for `method` and a URL or path (query, host and server base path ignored).

        Literal segments beat templated ones (`/issue/createmeta` over `/issue/{issueIdOrKey}`).

        Raises:
            SpecLookupError: no path template matches, or none that has this method.
        """
        method = method.lower()
        path = urlsplit(url).path or "/"
        candidates = [path] + [path[len(b) :] for b in self._base_paths if path.startswith(b + "/")]
        found = []
        for candidate in candidates:
            for regex, template in self._templates:
                match = regex.match(candidate)
                if match and method in self.path_item(template):
                    found.append((_specificity(template), template, match))
        if not found:
            raise SpecLookupError(f"no operation {method.upper()} {path} in the spec")
        _, template, match = max(found, key=lambda f: f[0])
        params = {_param_name(template, g): unquote(v) for g, v in match.groupdict().items()}
        return Operation(self, method.upper(), template, params, self.path_item(template)[method])

    # -- checks ------------------------------------------------------------------------------

    def request_errors(self, method: str, url: str, body: JSON) -> list[str]:
        """Problems of a request body against the operation's JSON requestBody schema."""
        op = self.operation(method, url)
        schema = op.request_schema()
        if schema is None:
            raise SpecLookupError(f"{op.method} {op.template} declares no JSON request body")
        return self.errors(body, schema, direction="request")

    def response_errors(self, method: str, url: str, status: int, body: JSON) -> list[str]:
        """Problems of a response body against the schema declared for its status."""
        op = self.operation(method, url)
        schema = op.response_schema(status)
        if schema is None:
            raise SpecLookupError(f"{op.method} {op.template} declares no JSON body for {status}")
        return self.errors(body, schema, direction="response")

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
        target = self.resolve(node)
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


def _json_schema(content: dict | None) -> dict | None:
    """The schema of the JSON media type in a `content` map (`application/json;charset=…`,
    `application/problem+json` and `*/*` count)."""
    if not content:
        return None

    def rank(media: str) -> int:
        base = media.split(";")[0].strip().lower()
        return 0 if base == "application/json" else 1 if base.endswith("+json") else 2 if base == "*/*" else 9

    media = min(content, key=rank)
    return content[media].get("schema") if rank(media) < 9 else None


def _template_regex(template: str) -> re.Pattern[str]:
    # A parameter fills part of one segment only (`/{Version}/{Phone-Number-ID}/messages`,
    # `/files/{name}.json`); group names are positional because spec names may hold dashes.
    counter = iter(range(1000))
    parts = re.split(r"(\{[^}/]+\})", template)
    regex = "".join(rf"(?P<p{next(counter)}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}/?$")


def _param_name(template: str, group: str) -> str:
    return re.findall(r"\{([^}/]+)\}", template)[int(group[1:])]


def _specificity(template: str) -> tuple[int, ...]:
    """Per segment: 2 fully literal, 1 partly templated, 0 a bare parameter; compared in order."""
    return tuple(0 if re.fullmatch(r"\{[^}]+\}", s) else 1 if "{" in s else 2 for s in template.split("/"))


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


def _from_query(raw: str, schema: dict, resolve: Callable[[Any], Any]) -> JSON:
    kind = schema.get("type")
    if kind == "array":
        items = resolve(schema.get("items") or {})
        return [_from_query(part, items, resolve) for part in raw.split(",") if part]
    if kind in ("integer", "number"):
        try:
            return int(raw) if kind == "integer" else float(raw)
        except ValueError:
            return raw
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def _describe(value: JSON) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return f"{type(value).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"
