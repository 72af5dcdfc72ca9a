"""What fuzzing the API against its OpenAPI document found (tests/integration/test_api_fuzz.py), each kept fixed."""
import json

import pytest

pytestmark = pytest.mark.django_db

NUL = "must not contain the NUL character (\\u0000)"


@pytest.fixture
def call(client, api_tokens):
    def send(method, path, body=None, role="admin"):
        kwargs = {"headers": {"Authorization": f"Bearer {api_tokens[role]}"}}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(path, **kwargs)

    return send


# PostgreSQL's text and jsonb cannot hold NUL: these answered 500 on it (DataError) before the API refused them.
@pytest.mark.parametrize("method, path, body, field", [
    ("post", "/api/deployments", {"name": "a\x00b", "type": "CLASSIFICATION", "labels": {"1": "x"}}, "name"),
    ("patch", "/api/deployment/{id}", {"name": "z\x00"}, "name"),
    ("post", "/api/deployment/{id}/tags", {"tags": ["ok", "a\x00b"]}, "tags[1]"),
    ("post", "/api/deployment/{id}/campaigns", {"description": "x", "q": "label:\x00"}, "q"),
    ("post", "/api/deployment/{id}/labels", {"class_id": 77, "name": "n\x00"}, "name"),
    ("post", "/api/deployment/{id}/predictions", {"metadata": {"camera": {"k\x00": 1}}}, "metadata.camera.k"),
])
def test_a_nul_character_in_a_json_body_is_a_400_naming_its_field(call, deployments, organization, method, path,
                                                                    body, field):
    deployment = deployments["OBJECT_DETECTION"]
    if path == "/api/deployments":
        body = {**body, "organization_id": str(organization.id)}
    response = call(method, path.format(id=deployment.id), body)
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"field": field, "message": NUL}]
    deployment.refresh_from_db()
    assert "\x00" not in deployment.name and all("\x00" not in tag for tag in deployment.tags)


def test_the_text_backslash_u0000_is_no_nul(call, deployments):
    # The JSON escape of a backslash followed by "u0000" is six ordinary characters, not a NUL.
    deployment = deployments["OBJECT_DETECTION"]
    response = call("post", f"/api/deployment/{deployment.id}/tags", {"tags": ["C:\\u0000dir"]})
    assert response.status_code == 200, response.content
    assert {"name": "C:\\u0000dir"} in response.json()["items"]


@pytest.mark.parametrize("path, field", [
    ("/api/deployments?name=a%00b", "name"),
    ("/api/models?name=m%00", "name"),
    ("/api/projects?name=p%00", "name"),
    ("/api/datasets?name=d%00", "name"),
    ("/api/deployment/{id}/predictedassets?q=a%00b", "q"),
    ("/api/deployment/{id}/predictedassets/find?filename=a%00", "filename"),
    ("/api/deployment/{id}/stats?service=metrics&tags=a%00", "tags"),
])
def test_a_nul_character_in_the_query_is_a_400_naming_its_parameter(call, deployments, path, field):
    response = call("get", path.format(id=deployments["OBJECT_DETECTION"].id))
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"field": field, "message": NUL}]


def test_a_nul_character_in_a_form_field_is_a_400(client, api_tokens, deployments):
    response = client.post(f"/api/deployment/{deployments['OBJECT_DETECTION'].id}/predict",
                           {"source": "cam\x00", "monitor": "false"},
                           headers={"Authorization": f"Bearer {api_tokens['admin']}"})
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"field": "source", "message": NUL}]


def test_a_form_sent_to_a_json_endpoint_is_a_400(client, api_tokens, organization):
    # Reading the form for NUL characters must not turn "this is not JSON" into a 500.
    response = client.post("/api/deployments", {"name": "x", "organization_id": str(organization.id)},
                           headers={"Authorization": f"Bearer {api_tokens['admin']}"})
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"field": "body", "message": "must be JSON, not a multipart form"}]


# A timestamp past year 9999 answered 500 (ValueError: year is out of range) on every database.
@pytest.mark.parametrize("query, field", [
    ("service=metrics&to_timestamp=99999999999999", "to_timestamp"),
    ("service=metrics&from_timestamp=99999999999999", "from_timestamp"),
])
def test_stats_refuse_a_timestamp_past_the_year_3000(call, deployments, query, field):
    for path in ("stats", "predictions/stats"):
        response = call("get", f"/api/deployment/{deployments['OBJECT_DETECTION'].id}/{path}?{query}")
        assert response.status_code == 400, response.content
        assert [error["field"] for error in response.json()["errors"]] == [field]


def test_stats_still_take_a_timestamp_in_the_year_2999(call, deployments):
    response = call("get", f"/api/deployment/{deployments['OBJECT_DETECTION'].id}/stats"
                           "?service=metrics&from_timestamp=0&to_timestamp=32503679999")
    assert response.status_code == 200, response.content
    assert response.json()["to_timestamp"] == 32503679999


# The fuzzer's smallest PNG (1x1) made the demo's adaptive-threshold segmenter raise in OpenCV (blockSize 1), so
# predict answered 502 for an image it can simply answer.
@pytest.mark.parametrize("side", [1, 2, 8, 15, 16])
def test_the_adaptive_contour_segmenter_takes_a_tiny_image(side):
    import numpy as np

    from serving.runtimes.classical import ContourSegmenter

    for method in ("adaptive", "otsu"):
        raw = ContourSegmenter("segmenter", "1.0", method).predict(np.full((side, side, 3), 128, dtype=np.uint8))
        assert len(raw["detection_classes"]) == len(raw["detection_scores"]) == len(raw["detection_masks"])
        assert all(0 <= x < side and 0 <= y < side for polygon in raw["detection_masks"] for x, y in polygon)
