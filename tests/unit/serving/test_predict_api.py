"""POST /api/deployment/{id}/predict, predict_data and predict/shadow, with Celery run eagerly (the queue itself is
tested in tests/integration/test_serving_live.py): what is answered, what is stored, and every refusal."""
import json
import os
import socket

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from dashboard.models import Data, Deployment, Model, PredictedAsset, Prediction
from dashboard.services.deployments import labels_adopt
from serving.services import deployment_set_model, runs
from serving.services.registry import model_version_create
from tests.onnx_models import DETECTION_CONTRACT, detection_model

DET = "OBJECT_DETECTION"
# detection_model() on a 640x480 image stretched into 320x320: x * 2, y * 1.5, as [top, left, bottom, right].
BOX_SEEN = [60, 64, 300, 320]
SMALL_BOX = [0, 0, 24, 32]


@pytest.fixture
def eager_celery():
    from dashboard.celery import app

    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


@pytest.fixture
def registered(organization, users):
    """registered(artifact=detection_model(), **contract changes) -> an ONNX detection version of the organization."""
    model = Model.objects.create(organization=organization, name="served-detector", type=DET)

    def make(artifact=None, **contract):
        return model_version_create(model=model, runtime="onnx", labels={"1": "car", "2": "person"},
                                    contract={**DETECTION_CONTRACT, **contract}, artifact=artifact or detection_model(),
                                    created_by=users["admin"])

    return make


@pytest.fixture
def served(deployments, registered, eager_celery):
    """The detection deployment with an ONNX champion, min_threshold 0.3, and no shadow."""
    deployment = deployments[DET]
    deployment_set_model(deployment=deployment, model_version_id=registered().id, shadow=False)
    deployment_set_model(deployment=deployment, model_version_id=None, shadow=True)
    Deployment.objects.filter(pk=deployment.pk).update(min_threshold=0.3)
    deployment.refresh_from_db()
    return deployment


@pytest.fixture
def jwt(client, api_tokens):
    """jwt(deployment, role="ml_lead") -> a serving JWT, logged in as the seeds' snippet does (Token header, no type)."""

    def login(deployment, role="ml_lead"):
        response = client.post("/api/login", data=json.dumps({"deployment_id": str(deployment.id), "api_token": api_tokens[role]}),
                               content_type="", headers={"Authorization": "Token " + api_tokens[role]})
        assert response.status_code == 200, response.content
        return response.json()["jwt"]

    return login


@pytest.fixture
def predict(client, jwt, jpeg_bytes):
    """predict(deployment, path="predict", token=None, **form) -> the response; `media` defaults to a 640x480 JPEG."""

    def post(deployment, path="predict", token=None, headers=None, **form):
        if "media" not in form and "data_id" not in form and "predicted_asset_id" not in form:
            form["media"] = jpeg_bytes(640, 480)
        if isinstance(form.get("media"), bytes):
            form["media"] = SimpleUploadedFile("frame.jpg", form["media"], content_type="image/jpeg")
        if form.get("media") is None:
            form.pop("media", None)
        token = token or jwt(deployment)
        return client.post(f"/api/deployment/{deployment.id}/{path}", data=form,
                           headers={"Authorization": f"Bearer {token}", **(headers or {})})

    return post


def assert_error(response, status, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["message"]
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
    return body


def datalake_files() -> list[str]:
    root = os.path.join(default_storage.location, "datalake")
    return [name for _, _, names in os.walk(root) for name in names]


def test_the_champion_answers_in_the_wire_format_and_the_prediction_is_stored(served, predict):
    response = predict(served, source="camera-7", tags=["gate", "night"], metadata=json.dumps({"lane": 2}))
    assert response.status_code == 200, response.content
    body = response.json()
    # The 0.1 box is under the deployment's min_threshold (0.3): neither answered nor stored.
    assert (body["detection_classes"], body["detection_scores"], body["detection_boxes"]) == ([1], [pytest.approx(0.9)], [BOX_SEEN])
    assert body["latency"] > 0 and body["monitored"] is True and body["model_version_id"] == str(served.champion_id)
    asset = PredictedAsset.objects.get(oracle_prediction_id=body["oracle_prediction_id"])
    assert (str(asset.id), str(asset.data_id)) == (body["predicted_asset_id"], body["data_id"])
    assert (asset.width, asset.height, asset.source, asset.latency) == (640, 480, "camera-7", body["latency"])
    assert asset.data.tags == ["gate", "night"] and asset.data.metadata == {"lane": 2}
    champion = asset.predictions.get(is_shadow=False)
    assert champion.model_version_id == served.champion_id
    assert champion.shapes == [{"type": "rectangle", "label_id": 1, "score": pytest.approx(0.9), "x": 64, "y": 60, "w": 256, "h": 240}]
    assert "shadow" not in body  # the deployment has none


def test_unmonitored_predictions_store_nothing(served, predict):
    body = predict(served, monitor="false").json()
    assert body["detection_boxes"] == [BOX_SEEN] and body["monitored"] is False and "oracle_prediction_id" not in body
    assert not PredictedAsset.objects.exists() and not Data.objects.exists() and datalake_files() == []


def test_the_plural_path_and_an_api_token_work_too(served, client, api_tokens, jpeg_bytes):
    media = SimpleUploadedFile("a.jpg", jpeg_bytes(640, 480), content_type="image/jpeg")
    response = client.post(f"/api/deployments/{served.id}/predict", data={"media": media, "monitor": "false"},
                           headers={"Authorization": f"Token {api_tokens['admin']}"})
    assert response.status_code == 200 and response.json()["detection_classes"] == [1]


def test_a_deployment_without_a_champion_answers_409(organization, predict, eager_celery, users):
    bare = Deployment.objects.create(organization=organization, name="bare", type=DET)
    body = assert_error(predict(bare), 409, "champion")
    assert "no champion model version" in body["message"]
    assert not PredictedAsset.objects.exists()


def test_a_champion_loupe_cannot_run_answers_409(deployments, predict, eager_celery):
    body = assert_error(predict(deployments[DET]), 409, "champion")  # the fixtures' versions have no runtime
    assert "monitored only" in body["message"]


@pytest.mark.parametrize("case, status, field", [
    ("not an image", 400, "media"),
    ("truncated", 400, "media"),
    ("no image", 400, "media"),
    ("too large", 413, "media"),
    ("bad metadata", 400, "metadata"),
    ("bad monitor", 400, "monitor"),
    ("unknown data", 404, "data_id"),
])
def test_bad_requests_name_the_field_and_store_nothing(served, predict, jpeg_bytes, settings, case, status, field):
    form = {}
    if case == "not an image":
        form["media"] = b"GIF89a not really"
    elif case == "truncated":
        form["media"] = jpeg_bytes(640, 480)[:2000]
    elif case == "no image":
        form["media"] = None
        form["source"] = "camera-1"
    elif case == "too large":
        settings.LOUPE_MAX_IMAGE_BYTES = 1000
    elif case == "bad metadata":
        form["metadata"] = "{not json"
    elif case == "bad monitor":
        form["monitor"] = "perhaps"
    else:
        form = {"data_id": "6d1c5c51-0000-4000-8000-000000000000"}
    assert_error(predict(served, **form), status, field)
    assert not PredictedAsset.objects.exists() and datalake_files() == []


@pytest.mark.parametrize("monitor", ["true", "false"])
def test_a_prediction_decodes_its_image_once(served, predict, monkeypatch, monitor):
    # The web process reads the header; the serving worker's decode (eager here, in this process) is the check, and
    # the monitored frame is stored on it without decoding again.
    from PIL import ImageFile

    decodes = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load",
                        lambda image: (image.tile and decodes.append(image.size)) or load(image))  # tile: not decoded yet
    assert predict(served, monitor=monitor).status_code == 200
    assert decodes == [(640, 480)]


def test_roles_and_jwts_are_checked(served, predict, jwt, deployments):
    assert_error(predict(served, token=jwt(served, "labeler")), 403)
    assert_error(predict(served, token=jwt(deployments["CLASSIFICATION"])), 401)
    assert not PredictedAsset.objects.exists()


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer_without_running_the_model(served, predict, monkeypatch):
    first = predict(served, headers={"Idempotency-Key": "retry-1"}).json()
    runs_seen = []
    original = runs.model_version_run
    monkeypatch.setattr(runs, "model_version_run", lambda **kwargs: runs_seen.append(1) or original(**kwargs))
    again = predict(served, headers={"Idempotency-Key": "retry-1"})
    body = assert_error(again, 409)
    assert (body["oracle_prediction_id"], body["detection_boxes"], body["id"]) == (first["oracle_prediction_id"], [BOX_SEEN], first["id"])
    assert runs_seen == [] and PredictedAsset.objects.count() == 1


def test_predict_data_runs_on_the_datalake_image_and_a_second_one_replaces_the_first(served, predict):
    first = predict(served, tags=["first"]).json()
    data_id = first["data_id"]
    again = predict(served, data_id=data_id, tags=["again"])
    assert again.status_code == 200, again.content
    body = again.json()
    assert body["detection_boxes"] == [BOX_SEEN] and body["data_id"] == data_id
    assert body["predicted_asset_id"] == first["predicted_asset_id"] and body["oracle_prediction_id"] != first["oracle_prediction_id"]
    assert any("now holds this one" in warning for warning in body["warnings"])
    assert PredictedAsset.objects.count() == 1 and Prediction.objects.count() == 1
    assert Data.objects.get(pk=data_id).tags == ["first", "again"]


def test_predict_data_of_another_organization_is_not_found(served, predict, other_deployment, jpeg_bytes):
    from monitoring.services.ingest import prediction_ingest
    import base64

    payload = {"filename": "x.jpg", "content_type": "image/jpeg", "width": 64, "height": 48, "latency": 0.1,
               "image": base64.b64encode(jpeg_bytes(64, 48, seed=9)).decode(),
               "raw_predictions": {"detection_classes": [], "detection_scores": [], "detection_boxes": []}}
    theirs = prediction_ingest(deployment=other_deployment, payload=payload).asset
    assert_error(predict(served, data_id=str(theirs.data_id)), 404, "data_id")


def test_a_model_answering_a_class_outside_the_label_map_is_a_502(served, predict, registered):
    wrong = registered(artifact=detection_model(classes=(9, 1)))  # label 10: not in the deployment's map
    deployment_set_model(deployment=served, model_version_id=wrong.id, shadow=False)
    body = assert_error(predict(served), 502, "model.raw_predictions.detection_classes[0]")
    assert "unknown class id 10" in body["message"]
    assert not PredictedAsset.objects.exists()


def test_an_http_champion_that_cannot_be_reached_is_a_502(served, predict, organization):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    model = Model.objects.create(organization=organization, name="remote", type=DET)
    remote = model_version_create(model=model, runtime="http", labels={"1": "car"}, endpoint=f"http://127.0.0.1:{port}/p",
                                  contract={"http": {"retries": 0}})
    deployment_set_model(deployment=served, model_version_id=remote.id, shadow=False)
    body = assert_error(predict(served), 502, "model")
    assert f"http model at http://127.0.0.1:{port}/p" in body["message"]


def test_the_shadow_runs_after_the_answer_and_is_stored_as_the_shadow_prediction(
    served, predict, registered, django_capture_on_commit_callbacks
):
    shadow = registered(artifact=detection_model(boxes=((0, 0, 160, 160),), scores=(0.7,), classes=(1,)))
    deployment_set_model(deployment=served, model_version_id=shadow.id, shadow=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = predict(served).json()
    assert body["shadow"] == "queued"
    asset = PredictedAsset.objects.get(pk=body["predicted_asset_id"])
    assert not asset.predictions.filter(is_shadow=True).exists()  # not run before the answer
    shadow_callbacks = [callback for callback in callbacks if "shadow_predict" in repr(callback)]
    assert len(shadow_callbacks) == 1
    shadow_callbacks[0]()
    stored = asset.predictions.get(is_shadow=True)
    assert stored.model_version_id == shadow.id and stored.latency > 0
    assert stored.shapes == [{"type": "rectangle", "label_id": 2, "score": pytest.approx(0.7), "x": 0, "y": 0, "w": 320, "h": 240}]
    shadow_callbacks[0]()  # a retry of the task stores nothing twice
    assert asset.predictions.filter(is_shadow=True).count() == 1


def test_predict_shadow_answers_the_shadow_and_stores_it_once(served, predict, registered):
    asset_id = predict(served).json()["predicted_asset_id"]
    assert_error(predict(served, path="predict/shadow", predicted_asset_id=asset_id), 409, "shadow")
    shadow = registered(artifact=detection_model(boxes=((0, 0, 160, 160),), scores=(0.7,), classes=(1,)))
    deployment_set_model(deployment=served, model_version_id=shadow.id, shadow=True)
    response = predict(served, path="predict/shadow", predicted_asset_id=asset_id, monitor="false")
    assert response.status_code == 200, response.content
    assert response.json()["detection_boxes"] == [[0, 0, 240, 320]]
    assert not Prediction.objects.filter(is_shadow=True).exists()
    stored = predict(served, path="predict/shadow", predicted_asset_id=asset_id)
    assert stored.status_code == 200 and stored.json()["model_version_id"] == str(shadow.id)
    assert Prediction.objects.get(is_shadow=True).shapes[0]["w"] == 320
    assert_error(predict(served, path="predict/shadow", predicted_asset_id=asset_id), 409, "predicted_asset_id")
    assert_error(predict(served, path="predict/shadow", predicted_asset_id="not-a-uuid"), 400, "predicted_asset_id")


def test_a_classification_keeps_its_class_under_the_threshold(organization, eager_celery, predict, users):
    from tests.onnx_models import PIXELS_CONTRACT, pixels_classifier

    deployment = Deployment.objects.create(organization=organization, name="tints", type="CLASSIFICATION", min_threshold=0.99)
    labels_adopt(deployment=deployment, labels={"1": "red", "2": "green", "3": "blue"})
    model = Model.objects.create(organization=organization, name="tints", type="CLASSIFICATION")
    version = model_version_create(model=model, runtime="onnx", labels={"1": "red", "2": "green", "3": "blue"},
                                   contract=PIXELS_CONTRACT, artifact=pixels_classifier())
    deployment_set_model(deployment=deployment, model_version_id=version.id, shadow=False)
    from tests.onnx_models import image_bytes, tinted_image

    body = predict(deployment, media=image_bytes(tinted_image(2, seed=99))).json()
    assert body["detection_classes"] == [3] and len(body["detection_scores"]) == 1



def test_a_class_the_deployment_retired_is_dropped_from_the_answer_not_refused(organization, eager_celery, predict):
    from django.utils import timezone

    from tests.onnx_models import PIXELS_CONTRACT, image_bytes, pixels_classifier, tinted_image

    deployment = Deployment.objects.create(organization=organization, name="tints", type="CLASSIFICATION")
    labels_adopt(deployment=deployment, labels={"1": "red", "2": "green", "3": "blue"})
    model = Model.objects.create(organization=organization, name="tints", type="CLASSIFICATION")
    version = model_version_create(model=model, runtime="onnx", labels={"1": "red", "2": "green", "3": "blue"},
                                   contract=PIXELS_CONTRACT, artifact=pixels_classifier())
    deployment_set_model(deployment=deployment, model_version_id=version.id, shadow=False)
    media = image_bytes(tinted_image(2, seed=99))
    assert predict(deployment, media=media).json()["detection_classes"] == [3]
    deployment.labels.filter(class_id=3).update(retired_at=timezone.now())
    deployment = Deployment.objects.get(pk=deployment.pk)
    response = predict(deployment, media=media)
    # The model still answers blue; the deployment takes it no more: the answer and the stored frame leave it out.
    assert response.status_code == 200, response.content
    assert response.json()["detection_classes"] == [] and response.json()["monitored"] is True


def test_a_warm_worker_predicts_on_sent_bytes_without_reading_the_database(registered, jpeg_bytes,
                                                                          django_assert_num_queries):
    import base64

    from serving.runtimes import runtime_forget

    version = registered()
    image = base64.b64encode(jpeg_bytes(640, 480)).decode("ascii")
    key = runs.model_version_key(version)
    runtime_forget()
    with django_assert_num_queries(1):  # cold: the version is read, its runtime opened
        cold = runs.model_version_predict(model_version_id=str(version.id), image=image, version_key=key)
    with django_assert_num_queries(0):  # warm: the cached runtime runs at once
        warm = runs.model_version_predict(model_version_id=str(version.id), image=image, version_key=key)
    assert warm["shapes"] == cold["shapes"] and warm["width"] == 640
    # A version changed since (another updated-at) is read and opened again, not served from the old runtime.
    with django_assert_num_queries(1):
        runs.model_version_predict(model_version_id=str(version.id), image=image, version_key=[key[0], "2000-01-01"])


def test_a_prediction_reads_the_deployment_its_versions_and_labels_in_two_queries(served, predict, jwt,
                                                                                 django_assert_max_num_queries):
    token = jwt(served)
    predict(served, token=token, monitor="false")  # the runtime opened: what follows is a warm prediction
    with django_assert_max_num_queries(2):  # the token; the deployment with its versions and its label map
        response = predict(served, token=token, monitor="false")
    assert response.status_code == 200 and response.json()["detection_boxes"][0] == BOX_SEEN
