"""An OpenAPI document: is this request or response body what the vendor's spec describes?

Find the operation for a method and a URL by matching path templates, and validate a body
against the operation's request schema or the response schema for a status (the value rules
are `tests.support.schema`'s). Tests get a document from `tests.support.spec`:

    spec = jira_spec()
    assert spec.request_errors("POST", url, body) == []
    assert spec.response_errors("POST", url, 201, answer) == []
    assert spec.errors(value, spec.component("ErrorCollection")) == []

Every check returns a list of readable problems (`$.fields.labels[0]: expected string, got int 7`),
empty when the value fits; a question the spec cannot answer (no such operation, no schema for
that status) raises `SpecLookupError` instead, so a typo never passes as "no problems".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.schema import JSON, SchemaRules


class SpecLookupError(LookupError):
    """The spec has no operation, request body or response schema for what was asked."""


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
        self._rules = SchemaRules(self.resolve, v31=self._v31)

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
        return self._rules.errors(value, schema, direction=direction, path=path)


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
