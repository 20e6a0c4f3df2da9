"""The API reference at ``/api/docs``, rendered on the server from the app's own OpenAPI document.

Why not Swagger UI: it needs a megabyte of JavaScript that the package does not ship, so FastAPI's page
loads it from a CDN; the app's CSP (scripts from our origin only) left that page blank, and a page that
fetches code from the internet at all is one an offline or privacy-minded deployment cannot use. A plain
HTML page of the operations (method, path, what it needs, what it answers) works under the same CSP as
every other page, without JavaScript, in the reader's language, and is read by screen readers like the
rest. ``/openapi.json`` stays the machine-readable source (generators, schemathesis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Field:
    """One parameter or body property: where it goes, its JSON type, whether it must be there, notes."""

    name: str
    where: str  # path, query, header, body
    type: str
    required: bool
    notes: str = ""


@dataclass(frozen=True)
class Answer:
    status: str
    description: str
    schema: str  # the schema's name, or its type
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One method on one path, flattened for the template (no ``$ref`` left to follow)."""

    method: str
    path: str
    summary: str
    description: str
    tag: str
    bearer: bool
    anchor: str
    fields: tuple[Field, ...] = ()
    answers: tuple[Answer, ...] = field(default_factory=tuple)


def _resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/components/schemas/"):
        return spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
    return schema


def _type(spec: dict, schema: dict) -> str:
    """A short human form of a JSON schema type: ``integer``, ``StatementPublic or null``, ``list of X``."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    if "anyOf" in schema:
        return " or ".join(_type(spec, s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return "list of " + _type(spec, schema.get("items", {}))
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    return str(schema.get("type", "any"))


def _notes(schema: dict) -> str:
    """Bounds, defaults and the description: what a caller gets refused for."""
    parts = []
    for key, word in (("minimum", "≥"), ("maximum", "≤")):
        if key in schema:
            value = schema[key]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            parts.append(f"{word} {value}")
    for key, word in (("minLength", "min length"), ("maxLength", "max length")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if "default" in schema:
        parts.append(f"default {schema['default']!r}".replace("False", "false").replace("True", "true"))
    if schema.get("description"):
        parts.append(schema["description"])
    return "; ".join(parts)


def _properties(spec: dict, schema: dict, where: str) -> tuple[Field, ...]:
    body = _resolve(spec, schema)
    required = set(body.get("required", ()))
    return tuple(
        Field(name, where, _type(spec, prop), name in required, _notes(prop))
        for name, prop in body.get("properties", {}).items()
    )


def _json_schema(content: dict) -> dict | None:
    media = content.get("application/json")
    return media.get("schema") if media else None


def operations(spec: dict) -> list[Operation]:
    """Every operation in an OpenAPI 3 document, in document order, with schemas expanded one level."""
    found = []
    for path, methods in spec.get("paths", {}).items():
        for method in METHODS:
            op = methods.get(method)
            if op is None:
                continue
            fields = [
                Field(
                    p["name"],
                    p.get("in", ""),
                    _type(spec, p.get("schema", {})),
                    bool(p.get("required")),
                    _notes(p.get("schema", {})),
                )
                for p in op.get("parameters", ())
            ]
            body = _json_schema(op.get("requestBody", {}).get("content", {}))
            if body is not None:
                fields.extend(_properties(spec, body, "body"))
            answers = []
            for status, response in op.get("responses", {}).items():
                schema = _json_schema(response.get("content", {}))
                answers.append(
                    Answer(
                        status,
                        response.get("description", ""),
                        _type(spec, schema) if schema else "",
                        _properties(spec, schema, "body") if schema else (),
                    )
                )
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    summary=op.get("summary", ""),
                    description=op.get("description", ""),
                    tag=(op.get("tags") or [""])[0],
                    bearer=any("HTTPBearer" in s for s in op.get("security", ())),
                    anchor=op.get("operationId", f"{method}-{path}"),
                    fields=tuple(fields),
                    answers=tuple(answers),
                )
            )
    return found
