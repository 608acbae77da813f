"""Routes for every service query, generated at start-up from the services' own schemas.

Each query `name` of each installed service gets `GET /v1/services/{service}/queries/{name}`
with its arguments as query parameters, described in the OpenAPI document from the query's
argument schema (JSON Schema from its pydantic model), so a newly installed service's
queries appear in /docs with no API code. The service validates the arguments itself
(strings from the URL, converted by its schema) and a refusal answers 400 `bad_query`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from seoulchain.api.errors import ApiError
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.errors import LocalError
from seoulchain.node.node import Node


def list_query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the OpenAPI query parameters of a query's argument JSON Schema."""
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop:  # a named type: inline it, the document has no $defs for it
            prop = definitions.get(prop["$ref"].rsplit("/", 1)[-1], {})
        parameters.append({"name": name, "in": "query", "required": name in required,
                           "description": prop.get("description", prop.get("title", name)),
                           "schema": {key: value for key, value in prop.items()
                                      if key not in ("title", "description")}})
    return parameters


def register_query_routes(app: FastAPI, node: Node) -> None:
    """Add one GET route per query of every installed service."""
    for service in node.describe_services():
        for name, query in service["queries"].items():
            add_query_route(app, node, service["name"], name, query)


def add_query_route(app: FastAPI, node: Node, service: str, name: str,
                    query: dict[str, Any]) -> None:
    """Add the route of one service query."""

    async def run_query(request: Request) -> dict[str, Any]:
        try:
            result = node.query(service, name, dict(request.query_params))
        except LocalError as exc:
            raise ApiError(400, "bad_query", str(exc)) from exc
        return {"height": node.get_height(), "result": to_jsonable(result)}

    app.add_api_route(
        f"/v1/services/{service}/queries/{name}", run_query, methods=["GET"],
        name=f"query_{service}_{name}", tags=[f"service {service}"],
        summary=query["description"] or f"{service} query {name}",
        openapi_extra={"parameters": list_query_parameters(query["args"])})
