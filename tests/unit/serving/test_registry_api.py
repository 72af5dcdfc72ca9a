"""The model registry's API: models, ONNX uploads checked by onnxruntime, HTTP endpoints, and the champion/shadow
history of deployments."""
import hashlib
import json
import os

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from dashboard.models import Model, ModelVersion
from serving.models import DeploymentModelChange
from tests.onnx_models import DETECTION_CONTRACT, PIXELS_CONTRACT, constant_model, detection_model, pixels_classifier

DET, CLS = "OBJECT_DETECTION", "CLASSIFICATION"
LABELS = {"1": "car", "2": "person"}


@pytest.fixture
def auth(api_tokens):
    def headers(role="admin"):
        return {"Authorization": f"Bearer {api_tokens[role]}"}

    return headers


@pytest.fixture
def detector(organization):
    return Model.objects.create(organization=organization, name="detector", type=DET)


def upload(client, model, headers, *, artifact=None, contract=DETECTION_CONTRACT, labels=LABELS, **form):
    body = {"labels": json.dumps(labels), "contract": json.dumps(contract), **form}
    if artifact is not None:
        body["file"] = SimpleUploadedFile("model.onnx", artifact, content_type="application/octet-stream")
    return client.post(f"/api/model/{model.id}/versions", data=body, headers=headers)


def assert_error(response, status, field):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["message"] and field in [error["field"] for error in body["errors"]], body
    return body


def stored_models() -> list[str]:
    root = os.path.join(default_storage.location, "models")
    return [name for _, _, names in os.walk(root) for name in names]


def test_an_onnx_upload_is_checked_stored_by_content_and_numbered(client, auth, detector):
    artifact = detection_model()
    response = upload(client, detector, auth(), artifact=artifact, name="tiny-det", metrics=json.dumps({"mAP50": 0.5}))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["version"], body["name"], body["runtime"], body["source"]) == (1, "tiny-det", "onnx", "uploaded")
    assert body["artifact"] == {"sha256": hashlib.sha256(artifact).hexdigest(), "size": len(artifact)}
    # The contract is kept as the file resolved it: the input's name and fixed size.
    assert (body["contract"]["input"]["name"], body["contract"]["input"]["size"]) == ("images", [320, 320])
    assert body["labels"] == LABELS and body["metrics"] == {"mAP50": 0.5}
    version = ModelVersion.objects.get(pk=body["id"])
    with default_storage.open(version.artifact.name, "rb") as file:
        assert file.read() == artifact
    second = upload(client, detector, auth(), artifact=artifact).json()
    assert (second["version"], second["name"]) == (2, "v2")
    assert len(stored_models()) == 1  # the same bytes are stored once


def test_a_classifier_upload_must_have_a_label_for_every_class(client, auth, organization):
    model = Model.objects.create(organization=organization, name="tints", type=CLS)
    body = assert_error(upload(client, model, auth(), artifact=pixels_classifier(), contract=PIXELS_CONTRACT,
                               labels={"1": "red", "2": "green"}), 400, "contract.class_offset")
    assert "lacks 3" in body["message"]
    response = upload(client, model, auth(), artifact=pixels_classifier(), contract=PIXELS_CONTRACT,
                      labels={"1": "red", "2": "green", "3": "blue"})
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("case", ["not onnx", "outputs break the contract", "contract names no boxes", "bad labels", "no file"])
def test_bad_uploads_name_the_problem_and_store_nothing(client, auth, detector, case):
    artifact, contract, labels, field = detection_model(), DETECTION_CONTRACT, LABELS, None
    if case == "not onnx":
        artifact, field = b"\x89PNG\r\n\x1a\n this is an image", "file"
    elif case == "outputs break the contract":
        artifact = constant_model({"boxes": np.zeros((1, 2, 4), np.float32), "scores": np.zeros((1, 2, 3), np.float32),
                                   "classes": np.zeros((1, 2), np.int64)})
        field = "contract.outputs.scores"
    elif case == "contract names no boxes":
        contract, field = {"outputs": {"scores": "scores"}}, "contract.outputs.boxes"
    elif case == "bad labels":
        labels, field = {"one": "car"}, "labels.one"
    else:
        artifact, field = None, "file"
    body = assert_error(upload(client, detector, auth(), artifact=artifact, contract=contract, labels=labels), 400, field)
    if case == "not onnx":
        assert body["message"].startswith("file: not an ONNX model onnxruntime can load")
    assert not ModelVersion.objects.exists() and stored_models() == []


def test_a_file_over_the_bound_is_a_413_and_stores_nothing(client, auth, detector, settings):
    settings.LOUPE_MAX_MODEL_BYTES = 100
    body = assert_error(upload(client, detector, auth(), artifact=detection_model()), 413, "file")
    assert "LOUPE_MAX_MODEL_BYTES" in body["errors"][0]["message"]
    assert not ModelVersion.objects.exists() and stored_models() == []


def test_an_http_endpoint_is_registered_from_json(client, auth, detector):
    body = {"runtime": "http", "endpoint": "http://models.internal:8080/predict", "labels": LABELS,
            "contract": {"http": {"timeout": 2}}}
    response = client.post(f"/api/model/{detector.id}/versions", data=json.dumps(body), content_type="application/json",
                           headers=auth())
    assert response.status_code == 201, response.content
    version = response.json()
    assert (version["runtime"], version["endpoint"], version["source"], version["artifact"]) == (
        "http", "http://models.internal:8080/predict", "registered", None)
    assert version["contract"]["http"]["timeout"] == 2 and version["contract"]["http"]["answer"] == "wire"
    body["endpoint"] = "models.internal:8080"
    bad = client.post(f"/api/model/{detector.id}/versions", data=json.dumps(body), content_type="application/json",
                      headers=auth())
    assert_error(bad, 400, "endpoint")
    assert ModelVersion.objects.count() == 1


@pytest.mark.parametrize("role, status", [("labeler", 403), ("ml_lead", 403)])
def test_only_admins_add_versions(client, auth, detector, role, status):
    assert upload(client, detector, auth(role), artifact=detection_model()).status_code == status
    assert client.get(f"/api/model/{detector.id}/versions", headers=auth(role)).status_code == 200
    assert not ModelVersion.objects.exists()


def test_an_outsider_sees_no_model(client, outsider_token, detector):
    headers = {"Authorization": f"Bearer {outsider_token}"}
    assert client.get(f"/api/model/{detector.id}", headers=headers).status_code == 404
    assert upload(client, detector, headers, artifact=detection_model()).status_code == 404


def test_models_are_created_once_per_name(client, auth, organization):
    body = {"name": "segmenter", "type": "SEGMENTATION", "organization_id": str(organization.id)}
    created = client.post("/api/models", data=json.dumps(body), content_type="application/json", headers=auth())
    assert created.status_code == 201 and created.json()["versions"] == []
    again = client.post("/api/models", data=json.dumps(body), content_type="application/json", headers=auth())
    assert_error(again, 409, "name")
    bad = client.post("/api/models", data=json.dumps({**body, "name": "x", "type": "OCR"}),
                      content_type="application/json", headers=auth())
    assert_error(bad, 400, "type")
    found = client.get("/api/models", {"name": "segmenter"}, headers=auth("labeler")).json()["items"]
    assert [item["id"] for item in found] == [created.json()["id"]]


def test_setting_models_keeps_the_history_and_the_version_says_where_it_serves(client, auth, users, deployments, detector):
    deployment = deployments[DET]
    before = deployment.shadow
    version = ModelVersion.objects.get(pk=upload(client, detector, auth(), artifact=detection_model()).json()["id"])
    for _ in range(2):  # the second time changes nothing and records nothing
        response = client.post(f"/api/deployment/{deployment.id}/shadow", data=json.dumps({"model_version_id": str(version.id)}),
                               content_type="application/json", headers=auth())
        assert response.status_code == 200 and response.json()["shadow"]["id"] == str(version.id)
    history = client.get(f"/api/deployment/{deployment.id}/model/history", headers=auth("labeler")).json()["items"]
    latest = history[0]
    assert (latest["role"], latest["changed_by"]) == ("shadow", "admin")
    assert latest["previous"] == {"id": str(before.id), "label": str(before)}
    assert latest["current"] == {"id": str(version.id), "label": "detector v1 (v1)"}
    # The fixture set champion and shadow first (with no one named), then the admin's one change.
    assert [(item["role"], item["changed_by"]) for item in history] == [("shadow", "admin"), ("shadow", None), ("champion", None)]
    detail = client.get(f"/api/model/version/{version.id}", headers=auth("labeler")).json()
    assert detail["deployments"] == [{"id": str(deployment.id), "name": deployment.name, "role": "shadow"}]
    assert [item["deployment_id"] for item in detail["history"]] == [str(deployment.id)]
    assert DeploymentModelChange.objects.filter(deployment=deployment).count() == 3
