"""The HTTP API's OpenAPI 3.1 document, one module per area, assembled once and served at /api/openapi.json.

It is written by hand and held against the code: tests/unit/dashboard/test_openapi.py fails when a route under /api/
has no description or a description no route, and the fuzzing test checks the answers against it.
"""
import copy
import functools

from dashboard.openapi import monitoring, pipelines, platform, reviews, serving
from dashboard.openapi.schema import ERROR, SECURITY_SCHEMES, error_responses, operation

AREAS = (platform, monitoring, serving, pipelines, reviews)

SELF = {
    "/api/openapi.json": {"get": operation(
        "This document", tag="Platform", auth="none", operation_id="openapiDocument",
        answer={"type": "object", "required": ["openapi", "paths"]}, errors=())},
}


@functools.cache
def _document() -> dict:
    paths, schemas = dict(SELF), {}
    for area in AREAS:
        for path in area.PATHS:
            if path in paths:
                raise ValueError(f"{path} is described twice")
        paths.update(area.PATHS)
        schemas.update(area.SCHEMAS)
    schemas["Error"] = ERROR
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loupe API",
            "version": "1",
            "description": "Monitoring, serving and the platform from one server. Every 4xx and 5xx answers "
                           '`{"message", "errors": [{"field", "message"}]}`. docs/api.md has the concepts and '
                           "examples.",
        },
        "tags": [{"name": name} for name in ("Authentication", "Platform", "Datasets", "Monitoring", "Serving",
                                             "Model registry", "Pipeline", "Reviews")],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "responses": error_responses(),
                       "securitySchemes": SECURITY_SCHEMES},
    }


def openapi_document() -> dict:
    """A copy of the document: callers may change theirs (the fuzzing test narrows its parameters)."""
    return copy.deepcopy(_document())
