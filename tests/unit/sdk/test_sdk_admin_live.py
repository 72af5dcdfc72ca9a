"""loupe_sdk's deployment-admin calls against a live Loupe server (Django's live_server, the real database):
create_deployment, update, tags, list_workers, delete(force_delete), and a retired class refused at ingest."""
import io
import sys
import uuid
from pathlib import Path

import pytest
from PIL import Image

try:
    import loupe_sdk  # noqa: F401
except ImportError:  # the package is not pip-installed in this environment: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "sdk"))

from loupe_sdk import Client, Tag
from loupe_sdk.exceptions import BadRequestError, ConflictError, ForbiddenError
from loupe_sdk.types.schemas_prediction import DetectionPredictionFormat

from dashboard.models import AuditEvent, Data, Deployment, PredictedAsset
from dashboard.services.deployments import label_retire

pytestmark = pytest.mark.django_db(transaction=True)


def png(seed: int) -> bytes:
    image = Image.new("RGB", (64, 48), (seed % 256, 40, 90))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def admin_client(live_server, api_tokens, organization):
    return Client(api_token=api_tokens["admin"], host=live_server.url)


def send(deployment, classes, seed):
    prediction = DetectionPredictionFormat(detection_classes=classes, detection_scores=[0.9] * len(classes),
                                           detection_boxes=[[2, 2, 20, 20]] * len(classes))
    return deployment.monitor_bytes(png(seed), "image/png", f"frame-{uuid.uuid4().hex}.png", 0.05, 48, 64, prediction)


def test_create_update_tags_workers_and_delete_through_the_client(admin_client, users, api_tokens, live_server):
    deployment = admin_client.create_deployment("dock-cam", "OBJECT_DETECTION", {1: "car", 2: "forklift"},
                                                min_threshold=0.2, tags=["dock"])
    stored = Deployment.objects.get(pk=deployment.id)
    assert dict(stored.labels.values_list("class_id", "name")) == {1: "car", 2: "forklift"}
    assert stored.min_threshold == 0.2 and stored.tags == ["dock"]

    deployment.update(name="dock-cam-2", min_threshold=0.4)
    stored.refresh_from_db()
    assert (stored.name, stored.min_threshold) == ("dock-cam-2", 0.4) and deployment.name == "dock-cam-2"

    deployment.add_tags([Tag("night"), "north"])
    deployment.remove_tags("dock")
    assert deployment.get_tags() == [Tag("night"), Tag("north")]

    workers = {worker.username: worker.role for worker in deployment.list_workers()}
    assert workers == {"admin": "admin", "labeler": "labeler", "ml_lead": "ml_lead"}

    send(deployment, [1], seed=1)
    data_id = PredictedAsset.objects.get(deployment_id=deployment.id).data_id
    with pytest.raises(ConflictError) as refused:
        deployment.delete()
    assert refused.value.status_code == 409 and refused.value.errors[0]["field"] == "force_delete"
    assert Deployment.objects.filter(pk=deployment.id).exists()
    deployment.delete(force_delete=True)
    assert not Deployment.objects.filter(pk=deployment.id).exists()
    assert Data.objects.filter(pk=data_id).exists()  # the datalake keeps the image
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"deployment.created", "deployment.updated", "deployment.tags_changed", "deployment.deleted"} <= actions


def test_a_retired_class_is_refused_by_the_ingest_the_client_reaches(admin_client, users):
    deployment = admin_client.create_deployment("yard-cam", "OBJECT_DETECTION", {1: "car", 2: "person"})
    assert send(deployment, [1, 2], seed=2)["id"]
    label_retire(deployment=Deployment.objects.get(pk=deployment.id), class_id=2, actor=users["admin"])
    with pytest.raises(BadRequestError) as refused:
        send(deployment, [2], seed=3)
    assert refused.value.errors[0]["field"] == "raw_predictions.detection_classes[0]"
    assert "class 2 (person) is retired" in refused.value.errors[0]["message"]
    assert PredictedAsset.objects.filter(deployment_id=deployment.id).count() == 1


def test_an_ml_lead_may_not_create_or_delete(live_server, api_tokens, deployments):
    lead = Client(api_token=api_tokens["ml_lead"], host=live_server.url)
    with pytest.raises(ForbiddenError):
        lead.create_deployment("nope", "CLASSIFICATION", ["cat", "dog"])
    with pytest.raises(ForbiddenError):
        lead.get_deployment("classification").delete(force_delete=True)
    assert Deployment.objects.filter(name="classification").exists()
