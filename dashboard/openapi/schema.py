"""The pieces every area's description is built from: operations, parameters, bodies, answers and the error shape."""

UUID = {"type": "string", "format": "uuid"}
TEXT = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
TIME = {"type": "string", "description": "ISO 8601 date and time"}
ANY = {}


def nullable(schema: dict) -> dict:
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*types, "null"]}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), **properties) -> dict:
    """An object with these properties; the API may add more, so others are allowed."""
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def items_of(schema: dict, **more) -> dict:
    return obj(("items",), items={"type": "array", "items": schema}, **more)


def array(schema: dict, **rules) -> dict:
    return {"type": "array", "items": schema, **rules}


def enum(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


def path_param(name: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema or UUID}


def query(name: str, schema: dict | None = None, description: str = "") -> dict:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema or TEXT}
    if description:
        parameter["description"] = description
    return parameter


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 128},
    "description": "A retry with the same key answers 409 and stores nothing twice.",
}

# The client sends a key on every monitoring and serving call; these endpoints take it and need none.
IDEMPOTENCY_KEY_IGNORED = {
    **IDEMPOTENCY_KEY,
    "description": "Accepted and not needed: a second shadow of the same prediction is a 409 anyway.",
}


def json_body(schema: dict, *, required: bool = True, description: str = "", examples: dict | None = None) -> dict:
    body = {"required": required, "content": {"application/json": {"schema": schema}}}
    if examples:
        body["content"]["application/json"]["examples"] = examples
    if description:
        body["description"] = description
    return body


def form_body(schema: dict, *, description: str = "") -> dict:
    body = {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


ERROR_STATUSES = {
    "400": "A rule of the body or query is broken; `errors` lists every broken rule.",
    "401": "No credential, an unknown or revoked token, an expired JWT or one bound to another deployment.",
    "403": "The member's role does not allow it.",
    "404": "No such thing, or not in the caller's organizations.",
    "409": "A repeat or a state that does not allow it.",
    "413": "The body, an image or a model file is over its bound.",
    "414": "The query string is over 4096 characters; `errors` names the longest parameter.",
    "502": "The model could not answer.",
    "503": "The database is unavailable (with Retry-After), or no serving worker took the prediction.",
    "504": "A serving worker took the prediction, but the model did not answer in time.",
}
# Every API view may answer these (dashboard/api/base.py: authentication, the query string bound, the database).
COMMON_ERRORS = ("400", "401", "404", "414", "503")


def operation(summary: str, *, tag: str, operation_id: str, answer: dict, status: str = "200",
              auth: str = "token", parameters: list | tuple = (), body: dict | None = None,
              errors: tuple[str, ...] = ("403",), description: str = "") -> dict:
    """One operation. `auth` is "token" (API token), "jwt" (deployment JWT or API token) or "none"; `answer` is
    the success response's JSON schema, or a whole response object when it has a key "content"."""
    response = answer if "content" in answer or "description" in answer else {
        "description": summary, "content": {"application/json": {"schema": answer}},
    }
    responses = {status: response}
    for code in sorted({*COMMON_ERRORS, *errors}):
        responses[code] = {"$ref": f"#/components/responses/Error{code}"}
    described = {"summary": summary, "operationId": operation_id, "tags": [tag], "responses": responses}
    if description:
        described["description"] = description
    if parameters:
        described["parameters"] = list(parameters)
    if body is not None:
        described["requestBody"] = body
    if auth == "none":
        described["security"] = []
    elif auth == "jwt":
        described["security"] = [{"deploymentJwt": []}, {"apiToken": []}]
    else:
        described["security"] = [{"apiToken": []}]
    return described


ERROR = obj(
    ("message", "errors"),
    message={"type": "string"},
    errors=array(obj(("field", "message"), field={"type": "string"}, message={"type": "string"})),
)


def error_responses() -> dict:
    return {
        f"Error{code}": {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
        for code, text in ERROR_STATUSES.items()
    }


SECURITY_SCHEMES = {
    "apiToken": {
        "type": "http", "scheme": "bearer",
        "description": "`Authorization: Bearer <API token>` (also `Token <API token>`), from the API tokens page.",
    },
    "deploymentJwt": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "`Authorization: Bearer <JWT>` from `POST /api/auth/login` or `POST /api/login`: bound to one "
                       "deployment, valid one hour.",
    },
}
