"""`seoulchain services`, and command-line arguments read by a service's own schemas.

Theory of operation: every installed service (the `seoulchain.services` entry points, the
registry the node uses too) declares its methods and queries with pydantic argument models.
`seoulchain services` prints them; `tx SERVICE METHOD key=value ...` and `query SERVICE NAME
key=value ...` (cli/txs.py) turn each `key=value` into the value its field's JSON Schema
asks for, then check the whole against the model, so a wrong, missing or unknown argument
is refused before anything is signed or sent, in the schema's own words.

Text conversion by field type: bytes from hex (a `sha256:` prefix allowed; `@FILE` gives
the SHA-256 of FILE for a 32-byte field), int, bool (`true`/`false`), str as typed, and
JSON for lists, maps and nested models (bytes inside them as hex strings too).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError

from seoulchain.cli.common import JsonOption, hash_file, print_json, reports_errors
from seoulchain.errors import LocalError
from seoulchain.execution.service import (
    Service,
    describe_service,
    describe_validation_error,
    load_services,
    parse_hex,
)
from seoulchain.ledger.types import TX_BYTES_MAX

# A `key=value` argument: the key is a field name.
PAIR_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# `@FILE` stands for a file's SHA-256, so only for fields of exactly that length.
FILE_HASH_BYTES = 32
# How `key=value` arguments are written, printed above the list of services.
VALUES_LEGEND = ("Arguments are given as key=value: bytes as hex (@FILE: the file's SHA-256, "
                 "for bytes[32]), bool as true or false, list, map and nested objects as JSON.")
# An --args-json file holds one transaction's arguments, which fit in one transaction.
ARGS_JSON_BYTES_MAX = TX_BYTES_MAX


def get_service(name: str) -> Service:
    """Return the installed service `name`, or raise `LocalError` naming the installed ones."""
    services = load_services()
    if name not in services:
        raise LocalError(f"no service named {name!r} is installed; installed: "
                         f"{', '.join(sorted(services)) or 'none'} (see `seoulchain services`)")
    return services[name]


def get_method_args(service: Service, method: str) -> type[BaseModel]:
    """Return the argument model of `service`'s transaction method `method`."""
    spec = service.methods.get(method)
    if spec is None:
        raise LocalError(f"service {service.name!r} has no method {method!r}; it has: "
                         f"{', '.join(sorted(service.methods)) or 'none'}")
    return spec.args


def get_query_args(service: Service, name: str) -> type[BaseModel]:
    """Return the argument model of `service`'s query `name`."""
    spec = service.queries.get(name)
    if spec is None:
        raise LocalError(f"service {service.name!r} has no query {name!r}; it has: "
                         f"{', '.join(sorted(service.queries)) or 'none'}")
    return spec.args


def is_pair(text: str) -> bool:
    """Return True if `text` looks like a `key=value` argument."""
    return PAIR_PATTERN.match(text) is not None


def build_args(model: type[BaseModel], what: str, pairs: list[str],
               args_json: Path | None = None) -> dict[str, Any]:
    """Return the arguments `pairs` (over those of `args_json`) give, converted by the schema
    of `model` (bytes, ints...), without its defaults filled in; `what` names the method in
    messages ("notary.anchor")."""
    schema = model.model_json_schema()
    fields: dict[str, Any] = schema.get("properties", {})
    defs: dict[str, Any] = schema.get("$defs", {})
    try:
        args = read_args_json(args_json, fields, defs, what) if args_json is not None else {}
        given: set[str] = set()
        for pair in pairs:
            key, sep, text = pair.partition("=")
            if not sep or not key:
                raise LocalError(f"{pair!r} is not a key=value argument of {what}")
            if key not in fields:
                raise_unknown_argument(key, fields, what)
            if key in given:
                raise LocalError(f"argument {key!r} of {what} is given twice")
            given.add(key)
            args[key] = convert_text(key, text, fields[key], defs)
    except RecursionError:
        raise LocalError(f"the arguments of {what} are nested too deeply") from None
    return args


def check_args(model: type[BaseModel], what: str, args: dict[str, Any]) -> None:
    """Raise `LocalError` unless `args` match `model`, in the schema's own words."""
    try:
        model.model_validate(args)
    except ValidationError as exc:
        raise LocalError(f"arguments do not match {what}: {describe_validation_error(exc)}"
                         ) from None


def raise_unknown_argument(key: str, fields: dict[str, Any], what: str) -> None:
    """Refuse an argument the schema does not have, naming the ones it has."""
    raise LocalError(f"{what} has no argument {key!r}; its arguments: "
                     f"{', '.join(fields) or 'none'}")


def read_args_json(path: Path, fields: dict[str, Any], defs: dict[str, Any],
                   what: str) -> dict[str, Any]:
    """Return the arguments in a JSON object file, converted by the schema (hex to bytes)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(ARGS_JSON_BYTES_MAX + 1)
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > ARGS_JSON_BYTES_MAX:
        raise LocalError(f"{path} is larger than a transaction ({ARGS_JSON_BYTES_MAX} bytes)")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise LocalError(f"{path} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LocalError(f"{path} must hold a JSON object of {what}'s arguments")
    args = {}
    for key, item in value.items():
        if key not in fields:
            raise_unknown_argument(key, fields, what)
        args[key] = convert_json(key, item, fields[key], defs)
    return args


def resolve_schema(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Return `schema` with a `$ref` to a definition followed."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return defs.get(ref.rsplit("/", 1)[-1], {})
    return schema


def get_variants(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the non-null alternatives of a field's schema (one unless it is a union)."""
    schema = resolve_schema(schema, defs)
    variants = schema.get("anyOf") or schema.get("oneOf") or [schema]
    resolved = [resolve_schema(variant, defs) for variant in variants]
    return [variant for variant in resolved if variant.get("type") != "null"] or [{}]


def is_nullable(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    """Return True if a field's schema allows null."""
    variants = resolve_schema(schema, defs).get("anyOf") or []
    return any(resolve_schema(variant, defs).get("type") == "null" for variant in variants)


def is_binary(schema: dict[str, Any]) -> bool:
    """Return True for the schema pydantic gives a bytes field."""
    return schema.get("type") == "string" and schema.get("format") == "binary"


def convert_text(key: str, text: str, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """Return the value `key=text` stands for, by the field's schema."""
    variants = get_variants(schema, defs)
    texts = any(variant.get("type") == "string" for variant in variants)
    if text == "null" and is_nullable(schema, defs) and not texts:
        return None
    errors = []
    for variant in variants:  # a union: the first alternative the text converts to
        try:
            return convert_variant(key, text, variant, defs)
        except LocalError as exc:
            errors.append(exc)
    raise errors[0]


def convert_variant(key: str, text: str, variant: dict[str, Any], defs: dict[str, Any]
                    ) -> Any:
    """Return the value `key=text` stands for as one alternative of a field's type."""
    kind = variant.get("type")
    if is_binary(variant):
        return convert_bytes(key, text, variant)
    if kind == "string":
        return text
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise LocalError(f"{key}: {text!r} is not an integer") from None
    if kind == "boolean":
        if text not in ("true", "false"):
            raise LocalError(f"{key}: {text!r} is not a bool (true or false)")
        return text == "true"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise LocalError(f"{key}: {text!r} is not JSON (a list or map is given as "
                         f"JSON, e.g. {key}='{{\"a\": \"b\"}}')") from None
    return convert_json(key, value, variant, defs)


def convert_bytes(key: str, text: str, schema: dict[str, Any]) -> bytes:
    """Return a bytes field's value: hex, or `@FILE` for FILE's SHA-256 (32-byte fields)."""
    if text.startswith("@"):
        if schema.get("minLength") != FILE_HASH_BYTES or schema.get("maxLength") != \
                FILE_HASH_BYTES:
            raise LocalError(f"{key}: @FILE gives a file's SHA-256, for 32-byte fields only")
        return hash_file(Path(text[1:]))
    try:
        return parse_hex(text)
    except ValueError:
        raise LocalError(f"{key}: {text!r} is not hex") from None


def convert_json(key: str, value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """Return a JSON value with its bytes fields (hex strings) turned into bytes."""
    variants = [variant for variant in get_variants(schema, defs)
                if matches_json_type(value, variant)]
    if value is None or not variants:
        return value  # the model check refuses it in its own words
    variant = variants[0]
    if is_binary(variant) and isinstance(value, str):
        return convert_bytes(key, value, variant)
    if isinstance(value, list):
        items = variant.get("items", {})
        return [convert_json(f"{key}[{index}]", item, items, defs)
                for index, item in enumerate(value)]
    if isinstance(value, dict):
        properties = variant.get("properties", {})
        extra = variant.get("additionalProperties")
        return {name: convert_json(f"{key}.{name}", item,
                                   properties.get(name, extra if isinstance(extra, dict)
                                                  else {}), defs)
                for name, item in value.items()}
    return value


def matches_json_type(value: Any, schema: dict[str, Any]) -> bool:
    """Return True if a JSON value could be of the schema's type (untyped schemas match)."""
    kind = schema.get("type")
    expected = {"string": str, "array": list, "object": dict, "boolean": bool,
                "integer": int, "number": (int, float)}.get(kind)
    return expected is None or isinstance(value, expected)


@reports_errors
def list_services(service: Annotated[str | None, typer.Argument(
                      help="Show only this service.")] = None,
                  json: JsonOption = False) -> None:
    """List the installed services: version, methods with their arguments and roles,
    queries, and chain parameters (--json: with each argument's full JSON Schema)."""
    services = load_services() if service is None else {service: get_service(service)}
    described = [describe_service(services[name]) for name in sorted(services)]
    if json:
        print_json({"services": described})
        return
    typer.echo("\n".join([VALUES_LEGEND, "", *(line for one in described
                                                  for line in render_service(one))]))



def render_service(described: dict[str, Any]) -> list[str]:
    """Return the lines `seoulchain services` prints for one service."""
    name = described["name"]
    lines = [f"{name} {described['version']}" + (f" - {described['description']}"
                                                 if described["description"] else "")]
    if described["privileges"]:
        lines.append(f"  privileges: {', '.join(described['privileges'])}")
    for method, spec in described["methods"].items():
        roles = ("any signer" if spec["roles"] is None
                 else "roles " + ", ".join(spec["roles"]))
        lines.append(f"  tx {name} {method} ({roles}) {spec['description']}".rstrip())
        lines += render_fields(spec["args"])
    for query_name, spec in described["queries"].items():
        lines.append(f"  query {name} {query_name} {spec['description']}".rstrip())
        lines += render_fields(spec["args"])
    for param, spec in described["params"].items():
        bounds = "".join([f", min {spec['minimum']}" if spec["minimum"] is not None else "",
                          f", max {spec['maximum']}" if spec["maximum"] is not None else ""])
        lines.append(f"  param {param} ({spec['type']}, default {spec['default']!r}{bounds}) "
                     f"{spec['description']}".rstrip())
    return [*lines, ""]


def render_fields(schema: dict[str, Any]) -> list[str]:
    """Return one line per argument: name, type with bounds, required or its default."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    fields = schema.get("properties", {})
    if not fields:
        return ["      (no arguments)"]
    types = {name: describe_type(field, defs) for name, field in fields.items()}
    name_width = max(len(name) for name in fields)
    type_width = max(len(type_name) for type_name in types.values())
    return [f"      {name:{name_width}}  {types[name]:{type_width}}  "
            f"{'required' if name in required else describe_default(field)}"
            for name, field in fields.items()]


def describe_default(field: dict[str, Any]) -> str:
    """Return how an optional argument is shown: its default when the schema names one."""
    return f"optional (default {json.dumps(field['default'])})" if "default" in field \
        else "optional"


def describe_type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """Return a short type name with bounds, e.g. bytes[32], str[1..64], list[int]."""
    variants = get_variants(schema, defs)
    names = [describe_one_type(variant, defs) for variant in variants]
    return " | ".join(names) + (" | null" if is_nullable(schema, defs) else "")


def describe_one_type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """Return one alternative's type name with its length or value bounds."""
    kind = schema.get("type")
    if is_binary(schema):
        return "bytes" + format_bounds(schema, "minLength", "maxLength")
    if kind == "string":
        return "str" + format_bounds(schema, "minLength", "maxLength")
    if kind == "integer":
        return "int" + format_bounds(schema, "minimum", "maximum")
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return f"list[{describe_type(schema.get('items', {}), defs)}]"
    if kind == "object" and "properties" in schema:
        return str(schema.get("title", "object"))
    if kind == "object":
        extra = schema.get("additionalProperties")
        value = describe_type(extra, defs) if isinstance(extra, dict) else "any"
        return f"map[str, {value}]"
    return str(kind or "any")


def format_bounds(schema: dict[str, Any], low_key: str, high_key: str) -> str:
    """Return "[n]" for an exact size, "[low..high]" for a range, "" for none."""
    low, high = schema.get(low_key), schema.get(high_key)
    if low is None and high is None:
        return ""
    if low == high:
        return f"[{low}]"
    return f"[{'' if low is None else low}..{'' if high is None else high}]"
