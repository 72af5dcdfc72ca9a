"""Serving against a live server, a real Redis and a real Celery worker consuming the `serving` queue: the seeds' raw
`requests` predict snippet, the Python client's registry and predict calls, no worker (503), and a slow shadow that
never holds the champion's answer."""
import ast
import contextlib
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dashboard.models import Model, PredictedAsset, Prediction
from serving.services import deployment_set_model
from serving.services.registry import model_version_create
from tests.helpers import celery_worker_running
from tests.onnx_models import DETECTION_CONTRACT, detection_model

pytestmark = pytest.mark.django_db(transaction=True)

DET = "OBJECT_DETECTION"
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"  # ../shared beside the clone, as CI has it
BOX_SEEN = [60, 64, 300, 320]  # detection_model()'s first box on a 640x480 image, [top, left, bottom, right]


@pytest.fixture
def serving_worker(celery_app_live, transactional_db):
    """A real Celery worker (solo pool, in a thread) consuming the default and the `serving` queues."""
    with celery_worker_running(celery_app_live, queues=["celery", "serving"]) as worker:
        yield worker


@pytest.fixture
def served(deployments, organization, users):
    """The detection deployment with an ONNX champion (and no shadow)."""
    deployment = deployments[DET]
    model = Model.objects.create(organization=organization, name="live-detector", type=DET)
    version = model_version_create(model=model, runtime="onnx", labels={"1": "car", "2": "person"},
                                   contract=DETECTION_CONTRACT, artifact=detection_model(), created_by=users["admin"])
    deployment_set_model(deployment=deployment, model_version_id=version.id, shadow=False)
    deployment_set_model(deployment=deployment, model_version_id=None, shadow=True)
    deployment.refresh_from_db()
    return deployment


@pytest.fixture
def photo(tmp_path, jpeg_bytes):
    path = tmp_path / "image.png"  # the snippet's name; the bytes are a JPEG, which Loupe tells by content
    path.write_bytes(jpeg_bytes(640, 480, seed=11))
    return path


def predict_snippet() -> str:
    """The seed's prediction snippet (its first program, up to the monitoring part), as written there."""
    seed = next(SEEDS.glob("004_*.txt"), None) if SEEDS.is_dir() else None
    if seed is None:
        pytest.fail(f"the seeds are not at {SEEDS}: this test needs ../shared beside the clone")
    text = seed.read_text()
    start = text.index("import requests")
    end = text.index("Monitoring Service", start)
    return text[start:end]


def test_the_seeds_raw_predict_snippet_gets_the_champions_prediction_and_monitors_it(
    serving_worker, live_server, served, api_tokens, photo, client, users
):
    snippet = predict_snippet()
    # The snippet's own placeholders, whatever their wording: the values its host, deployment_id and api_token
    # variables are given, and the image path it opens.
    values = {"host": live_server.url, "deployment_id": str(served.id), "api_token": api_tokens["ml_lead"]}
    filled = re.sub(r'^(\s*)(host|deployment_id|api_token) = "[^"]*"',
                    lambda m: f"{m.group(1)}{m.group(2)} = {values[m.group(2)]!r}", snippet, flags=re.M)
    filled = filled.replace('"path/to/image.png"', repr(str(photo)))
    assert all(filled.count(repr(value)) == 1 for value in values.values()) and str(photo) in filled
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(filled, "seed-004-predict", "exec"), {"__name__": "__main__"})
    prediction = ast.literal_eval(printed.getvalue().strip())

    assert prediction["detection_classes"] == [1, 2] and prediction["detection_boxes"][0] == BOX_SEEN
    assert prediction["detection_scores"] == [pytest.approx(0.9), pytest.approx(0.1)]
    assert prediction["latency"] > 0 and prediction["model_version_id"] == str(served.champion_id)
    asset = PredictedAsset.objects.get(oracle_prediction_id=prediction["oracle_prediction_id"])
    assert (asset.deployment_id, asset.status, asset.filename, asset.width, asset.height) == (served.id, "TO_REVIEW", "image.png", 640, 480)
    client.force_login(users["labeler"])
    queue = client.get(f"/deployments/{served.id}/queue/?view=table").content.decode()
    assert f'data-asset="{asset.id}"' in queue


def test_the_client_finds_registry_versions_sets_them_and_predicts(serving_worker, live_server, served, demo_org, photo, settings):
    from loupe_sdk import Client

    settings.LOUPE_PUBLIC_URL = live_server.url
    with Client(api_token=demo_org.api_token, organization_name=demo_org.organization.name, host=live_server.url) as client:
        model = client.get_model("live-detector")
        version = model.get_version(1)
        assert model.get_version("v1") == version == model.list_versions()[0]
        deployment = client.get_deployment(served.name)
        assert deployment.get_model_version() == version
        deployment.set_shadow_model(version)
        assert deployment.get_shadow_model() == version

        answer = deployment.predict(photo, tags=["sdk"], source="camera-9", metadata={"k": 1})
        assert answer["detection_boxes"][0] == BOX_SEEN and answer["shadow"] == "queued"
        asset = PredictedAsset.objects.get(pk=answer["predicted_asset_id"])
        assert (asset.source, asset.data.tags, asset.data.metadata) == ("camera-9", ["sdk"], {"k": 1})
        # The shadow (the same version here) runs after the answer, on the worker.
        shadow = _wait_for(lambda: Prediction.objects.filter(asset=asset, is_shadow=True).first())
        assert str(shadow.model_version_id) == version.id

        again = deployment.predict_data(answer["data_id"], monitor=False)
        assert again["detection_boxes"][0] == BOX_SEEN and "oracle_prediction_id" not in again
        shadow_answer = deployment.predict_shadow(answer["predicted_asset_id"], monitor=False)
        assert shadow_answer["detection_boxes"][0] == BOX_SEEN and shadow_answer["model_version_id"] == version.id


def _wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def test_without_a_serving_worker_the_answer_is_a_503_and_nothing_is_stored(
    celery_app_live, live_server, served, api_tokens, photo, settings
):
    import requests

    settings.LOUPE_SERVING_TIMEOUT = 1.5
    jwt = requests.post(f"{live_server.url}/api/login", data=json.dumps({"deployment_id": str(served.id), "api_token": api_tokens["ml_lead"]})).json()["jwt"]
    started = time.monotonic()
    with photo.open("rb") as file:
        response = requests.post(f"{live_server.url}/api/deployment/{served.id}/predict", files={"media": file},
                                 headers={"Authorization": f"Bearer {jwt}"})
    waited = time.monotonic() - started
    assert response.status_code == 503, response.text
    body = response.json()
    assert "no serving worker" in body["message"] and body["errors"] == [{"field": "worker", "message": "none on queue serving"}]
    assert 1.5 <= waited < 30
    assert not PredictedAsset.objects.exists()


class BlockingEndpoint:
    """A local model endpoint that holds each request until the test releases it (a shadow as slow as we like)."""

    def __init__(self, answer: dict):
        self.received = threading.Event()
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.received.set()
                endpoint.release.wait(120)
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/predict"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_slow_shadow_never_holds_the_champions_answer(serving_worker, live_server, served, api_tokens, photo, organization):
    import requests

    def predict():
        jwt = requests.post(f"{live_server.url}/api/login", data=json.dumps({"deployment_id": str(served.id), "api_token": api_tokens["ml_lead"]})).json()["jwt"]
        with photo.open("rb") as file:
            started = time.monotonic()
            response = requests.post(f"{live_server.url}/api/deployment/{served.id}/predict", files={"media": file},
                                     headers={"Authorization": f"Bearer {jwt}"})
        assert response.status_code == 200, response.text
        return response.json(), time.monotonic() - started

    alone, _ = predict()
    shadow_answer = {"detection_classes": [2], "detection_scores": [0.8], "detection_boxes": [[10, 20, 110, 220]]}
    with BlockingEndpoint(shadow_answer) as endpoint:
        model = Model.objects.create(organization=organization, name="slow-remote", type=DET)
        slow = model_version_create(model=model, runtime="http", labels={"1": "car", "2": "person"}, endpoint=endpoint.url,
                                    contract={"http": {"timeout": 120, "retries": 0}})
        deployment_set_model(deployment=served, model_version_id=slow.id, shadow=True)
        answer, elapsed = predict()
        # The shadow is running (its request reached the endpoint) and stays blocked: the answer did not wait for it.
        assert endpoint.received.wait(60)
        asset = PredictedAsset.objects.get(pk=answer["predicted_asset_id"])
        assert not asset.predictions.filter(is_shadow=True).exists()
        assert answer["shadow"] == "queued" and elapsed < 60
        # The same answer as the champion alone gave.
        assert {k: v for k, v in answer.items() if k.startswith("detection_")} == {
            k: v for k, v in alone.items() if k.startswith("detection_")}
        endpoint.release.set()
        stored = _wait_for(lambda: asset.predictions.filter(is_shadow=True).first())
    assert stored.model_version_id == slow.id
    assert stored.shapes == [{"type": "rectangle", "label_id": 2, "score": 0.8, "x": 20, "y": 10, "w": 200, "h": 100}]
