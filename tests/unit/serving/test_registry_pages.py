"""The registry's pages through the test client: members read, admins upload, register and set; refusals shown on
the page name their field; CSRF on every form; no inline script or style."""
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from dashboard.models import Model, ModelVersion
from serving.models import DeploymentModelChange
from tests.onnx_models import detection_model

DET = "OBJECT_DETECTION"


@pytest.fixture
def as_role(client, users):
    def login(role):
        client.force_login(users[role])
        return client

    return login


@pytest.fixture
def detector(organization):
    return Model.objects.create(organization=organization, name="detector", type=DET)


def onnx_form(**overrides):
    form = {"runtime": "onnx", "file": SimpleUploadedFile("det.onnx", detection_model()), "labels": "1: car\n2: person",
            "output_boxes": "boxes", "output_scores": "scores", "output_classes": "classes", "class_offset": "1",
            "box_format": "xyxy", "name": "page-upload"}
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def assert_no_inline_code(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html and "<style" not in html


def test_members_read_every_page_and_see_no_admin_forms(as_role, detector, deployments):
    client = as_role("labeler")
    version = ModelVersion.objects.filter(model__organization=detector.organization).first()
    for url in ("/models/", f"/models/{detector.id}/", f"/models/versions/{version.id}/",
                f"/deployments/{deployments[DET].id}/models/"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert 'name="csrfmiddlewaretoken"' not in html.split("</header>", 1)[1], url  # no form but the topbar's
        assert_no_inline_code(html)


def test_an_outsider_gets_404_everywhere(client, outsider, detector, deployments):
    client.force_login(outsider)
    version = ModelVersion.objects.filter(model__organization=detector.organization).first()
    for url in (f"/models/{detector.id}/", f"/models/versions/{version.id}/", f"/deployments/{deployments[DET].id}/models/"):
        assert client.get(url).status_code == 404, url
    assert "detector" not in client.get("/models/").content.decode()


def test_an_admin_uploads_a_version_and_lands_on_its_page(as_role, detector):
    client = as_role("admin")
    response = client.post(f"/models/{detector.id}/", onnx_form(), follow=True)
    version = ModelVersion.objects.get(model=detector)
    assert response.redirect_chain[-1][0] == f"/models/versions/{version.id}/"
    html = response.content.decode()
    assert "page-upload" in html and "&quot;boxes&quot;: &quot;boxes&quot;" in html and "uploaded" in html.lower()
    assert (version.runtime, version.labels, version.created_by.username) == ("onnx", {"1": "car", "2": "person"}, "admin")
    assert version.contract["class_offset"] == 1 and version.contract["outputs"]["classes"] == "classes"


@pytest.mark.parametrize("overrides, field", [
    ({"file": SimpleUploadedFile("det.onnx", b"not a model")}, "file"),
    ({"output_boxes": "bbox"}, "contract.outputs.boxes"),
    ({"labels": "car person"}, "labels.car"),
    ({"size": "big"}, "contract.input.size"),
])
def test_a_refused_upload_shows_the_field_and_keeps_what_was_typed(as_role, detector, overrides, field):
    response = as_role("admin").post(f"/models/{detector.id}/", onnx_form(**overrides))
    assert response.status_code == 400
    html = response.content.decode()
    assert f"<code>{field}</code>" in html and "Nothing was stored" in html
    assert 'value="page-upload"' in html
    assert not ModelVersion.objects.filter(model=detector).exists()


def test_an_admin_registers_an_endpoint(as_role, detector):
    response = as_role("admin").post(f"/models/{detector.id}/", {
        "runtime": "http", "endpoint": "http://10.0.0.5:9000/predict", "labels": '{"1": "car"}', "answer": "wire"})
    assert response.status_code == 302
    assert ModelVersion.objects.get(model=detector).endpoint == "http://10.0.0.5:9000/predict"


def test_only_admins_post(as_role, detector, deployments):
    client = as_role("ml_lead")
    assert client.post(f"/models/{detector.id}/", onnx_form()).status_code == 403
    version = deployments[DET].champion
    response = client.post(f"/models/versions/{version.id}/", {"deployment_id": str(deployments[DET].id), "role": "shadow"})
    assert response.status_code == 403
    assert not ModelVersion.objects.filter(model=detector).exists()


def test_forms_need_the_csrf_token(users, detector, deployments):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["admin"])
    assert client.post(f"/models/{detector.id}/", onnx_form()).status_code == 403
    assert client.post(f"/deployments/{deployments[DET].id}/models/", {"role": "shadow", "model_version_id": ""}).status_code == 403
    assert deployments[DET].shadow is not None


def test_setting_a_shadow_from_the_version_page_shows_in_both_histories(as_role, deployments, users):
    deployment = deployments[DET]
    champion = deployment.champion
    client = as_role("admin")
    response = client.post(f"/models/versions/{champion.id}/", {"deployment_id": str(deployment.id), "role": "shadow"},
                           follow=True)
    deployment.refresh_from_db()
    assert deployment.shadow_id == champion.id
    html = response.content.decode()
    assert "is the shadow of" in html and 'data-testid="history"' in html
    change = DeploymentModelChange.objects.filter(deployment=deployment).first()
    assert (change.role, change.current_id, change.changed_by) == ("shadow", champion.id, users["admin"])
    page = client.get(f"/deployments/{deployment.id}/models/").content.decode()
    assert page.count("<tr>") >= 3 and ">admin<" in page
    # Removing the shadow is a change too.
    client.post(f"/deployments/{deployment.id}/models/", {"role": "shadow", "model_version_id": ""})
    deployment.refresh_from_db()
    assert deployment.shadow_id is None
    assert DeploymentModelChange.objects.filter(deployment=deployment, current=None).count() == 1


def test_a_model_is_created_on_the_list_page(as_role, organization):
    client = as_role("admin")
    response = client.post("/models/", {"organization_id": str(organization.id), "name": "segmenter", "type": "SEGMENTATION"})
    model = Model.objects.get(name="segmenter")
    assert response.status_code == 302 and response["Location"] == f"/models/{model.id}/"
    again = client.post("/models/", {"organization_id": str(organization.id), "name": "segmenter", "type": "SEGMENTATION"})
    assert again.status_code == 400 and "<code>name</code> is taken" in again.content.decode()
