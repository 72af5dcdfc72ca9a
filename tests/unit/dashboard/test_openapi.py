"""The OpenAPI document against the code: every /api/ route described with the methods it answers, nothing described
that has no route, a valid OpenAPI 3.1 document, served as JSON."""
import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from openapi_spec_validator import validate

from dashboard.openapi import openapi_document
from pipelines.api import EXPERIMENT_ACTIONS

# Routes under /api/ that are pages, not endpoints: the reference page itself.
PAGES = {"api/docs"}
METHODS = {"get", "post", "put", "patch", "delete"}


def api_routes(patterns=None, prefix: str = "") -> set[str]:
    """Every URL route of the project under api/, as Django writes it (api/deployment/<uuid:deployment_id>)."""
    found = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found |= api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/"):
            found.add(route)
    return found


def concrete(path: str, document: dict) -> str:
    """A documented path with a value of each parameter's type in place of its template."""
    parameters = {}
    for operation in (document["paths"][path][method] for method in METHODS & set(document["paths"][path])):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                parameters[parameter["name"]] = parameter["schema"]

    def value(match):
        schema = parameters[match.group(1)]
        return "7" if schema.get("type") == "integer" else str(uuid.uuid4())

    return re.sub(r"\{(\w+)\}", value, path)


@pytest.fixture(scope="module")
def document():
    return openapi_document()


def test_the_document_is_valid_openapi_3_1(document):
    validate(document)  # raises on any fault
    assert document["openapi"].startswith("3.1")


def test_every_api_route_is_described_and_every_description_has_a_route(document):
    described = {}
    for path in document["paths"]:
        match = resolve(concrete(path, document))
        assert match.route.startswith("api/"), f"{path} resolves to {match.route}, outside /api/"
        described.setdefault(match.route, []).append(path)
    routes = api_routes() - PAGES
    assert sorted(routes - described.keys()) == [], "routes under /api/ with no description in dashboard/openapi/"
    assert sorted(described.keys() - routes) == []


def test_each_path_documents_exactly_the_methods_its_view_answers(client, document):
    for path, item in document["paths"].items():
        url = concrete(path, document)
        # api_view answers a method it does not take with 405 and the ones it takes, before authentication.
        response = client.generic("TRACE", url)
        assert response.status_code == 405, (path, response.status_code)
        allowed = {method.strip().lower() for method in response.headers["Allow"].split(",")}
        assert allowed == METHODS & set(item), f"{path}: the view answers {sorted(allowed)}"


def test_experiment_actions_are_the_views_actions(document):
    prefix = "/api/deployment/{deployment_id}/experiments/{experiment_id}/"
    actions = {path.removeprefix(prefix) for path in document["paths"] if path.startswith(prefix)}
    assert actions == set(EXPERIMENT_ACTIONS)


def test_every_operation_has_an_id_security_and_the_error_shape(document):
    ids = []
    for path, item in document["paths"].items():
        for method in METHODS & set(item):
            operation = item[method]
            ids.append(operation["operationId"])
            assert "security" in operation, (method, path)
            for status in ("400", "401", "404", "414", "503"):
                assert operation["responses"][status] == {"$ref": f"#/components/responses/Error{status}"}, \
                    (method, path, status)
    assert len(ids) == len(set(ids)), "operationIds repeat"
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["message", "errors"]
    assert error["properties"]["errors"]["items"]["required"] == ["field", "message"]
    assert set(document["components"]["securitySchemes"]) == {"apiToken", "deploymentJwt"}


def test_the_ingest_body_takes_each_prediction_format(document):
    body = document["paths"]["/api/deployment/{deployment_id}/predictions"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/MonitoredPrediction"}
    formats = document["components"]["schemas"]["RawPredictions"]["anyOf"]
    assert [item["$ref"].rsplit("/", 1)[1] for item in formats] == [
        "ClassificationPrediction", "ObjectDetectionPrediction", "SegmentationPrediction"]
    segmentation = document["components"]["schemas"]["SegmentationPrediction"]
    assert "detection_masks" in segmentation["required"]


def test_the_stats_services_are_the_views_services(document):
    from monitoring.stats_api import SERVICE_METRICS

    parameters = {p["name"]: p["schema"] for p in
                  document["paths"]["/api/deployment/{deployment_id}/stats"]["get"]["parameters"]}
    assert set(parameters["metric"]["enum"]) == set(SERVICE_METRICS)
    assert set(parameters["service"]["enum"]) == set(SERVICE_METRICS) | {service for service, _ in
                                                                          SERVICE_METRICS.values()}


def test_the_ingest_examples_are_one_per_prediction_format(document):
    content = document["paths"]["/api/deployment/{deployment_id}/predictions"]["post"]["requestBody"]["content"]
    examples = content["application/json"]["examples"]
    assert {example["summary"].split(":")[0] for example in examples.values()} == {
        "CLASSIFICATION", "OBJECT_DETECTION", "SEGMENTATION"}


def test_the_document_is_served_without_credentials(client, document):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == document


@pytest.mark.django_db
def test_the_reference_page_needs_a_login_and_is_in_the_top_bar(client, users):
    assert client.get("/api/docs").status_code == 302
    client.force_login(users["labeler"])
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-document-url="/api/openapi.json"' in html
    assert 'href="/api/docs" aria-current="page"' in html
    assert "<script>" not in html  # the CSP allows no inline script: Swagger UI starts from a static file
