"""Validate API responses against the served OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

import jsonschema


class OpenApiChecker:
    """Checks that a (method, path, status, body) is documented and matches its schema."""

    def __init__(self, document: dict[str, Any]):
        self.document = document
        # Literal paths before templated ones, as the router resolves them.
        self._routes = sorted(
            ((re.compile("^" + re.sub(r"{\w+}", r"[^/]+", template) + "$"), template)
             for template in document["paths"]),
            key=lambda route: route[1].count("{"),
        )

    def operation_for(self, method: str, path: str) -> tuple[str | None, dict[str, Any] | None]:
        for pattern, template in self._routes:
            if pattern.match(path) and method.lower() in self.document["paths"][template]:
                return template, self.document["paths"][template][method.lower()]
        return None, None

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any]:
        template, operation = self.operation_for(method, path)
        if operation is None:
            # Unknown routes and wrong methods still answer with the error envelope.
            assert status in (404, 405), f"{method} {path} is not documented but answered {status}"
            return {"$ref": "#/components/schemas/ErrorEnvelope"}
        responses = operation["responses"]
        assert str(status) in responses, (
            f"{method} {template} answered {status}, which is not documented "
            f"(documented: {sorted(responses)})")
        return responses[str(status)]["content"]["application/json"]["schema"]

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        schema = dict(self.schema_for(method, path, status))
        schema["components"] = self.document["components"]
        jsonschema.Draft202012Validator(schema).validate(body)
