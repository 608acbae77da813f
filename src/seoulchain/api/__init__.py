"""The HTTP API: REST over a node, with an OpenAPI description at /docs."""
