"""An admin uploads an ONNX version on the model's page (a refused one first), sets it as a deployment's shadow, and
sees the change in the history."""
import re

import pytest

from dashboard.models import Deployment, Model, ModelVersion
from tests.browser.test_queue import log_in
from tests.onnx_models import pixels_classifier

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_uploads_an_onnx_version_sets_it_as_shadow_and_sees_the_history(
    page, live_server, users, organization, deployments, screenshot_dir, tmp_path
):
    deployment = deployments["CLASSIFICATION"]
    previous_shadow = str(deployment.shadow)
    model = Model.objects.create(organization=organization, name="tint-classifier", type="CLASSIFICATION",
                                 description="Tells reddish, greenish and bluish frames apart.")
    artifact = tmp_path / "tints.onnx"
    artifact.write_bytes(pixels_classifier())
    problems = []
    # Errors of the page's own code or its Content-Security-Policy; the refused upload's 400 answer is meant.
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and "status of 400" not in message.text else None)

    log_in(page, live_server, "admin")
    page.click("nav.nav >> text=Models")
    page.wait_for_url(re.compile(r"/models/$"))
    page.click("text=tint-classifier")
    page.wait_for_url(re.compile(rf"/models/{model.id}/$"))

    form = page.locator("[data-testid=upload-form]")
    form.locator("input[name=file]").set_input_files(str(artifact))
    form.locator("input[name=name]").fill("pixels-8px")
    form.locator("textarea[name=labels]").fill("1: car\n2: person\n3: bike")
    form.locator("input[name=output_probabilities]").fill("scores")  # a name the model does not have
    form.locator("select[name=layout]").select_option("flat")
    form.locator("input[name=size]").fill("8x8")
    form.locator("input[name=class_offset]").fill("1")
    form.locator("button").click()
    errors = page.locator("[data-testid=form-errors]")
    assert "contract.outputs.probabilities" in errors.inner_text()
    assert "no output named 'scores'" in errors.inner_text()
    page.screenshot(path=str(screenshot_dir / "registry-upload-refused.png"), full_page=True)
    assert not ModelVersion.objects.filter(model=model).exists()

    form = page.locator("[data-testid=upload-form]")
    assert form.locator("input[name=name]").input_value() == "pixels-8px"  # what was typed is kept
    form.locator("input[name=file]").set_input_files(str(artifact))
    form.locator("input[name=output_probabilities]").fill("probabilities")
    form.locator("button").click()
    page.wait_for_url(re.compile(r"/models/versions/[0-9a-f-]+/$"))
    version = ModelVersion.objects.get(model=model)
    assert page.locator("h1").inner_text().startswith("tint-classifier v1")
    assert page.locator("[data-testid=runtime]").inner_text() == "ONNX (onnxruntime)"
    assert '"layout": "flat"' in page.locator("[data-testid=contract]").inner_text()
    assert page.locator("[data-testid=served]").inner_text() == "No deployment runs it."

    set_form = page.locator("[data-testid=set-form]")
    set_form.locator("select[name=deployment_id]").select_option(label=deployment.name)
    set_form.locator("select[name=role]").select_option("shadow")
    set_form.locator("button").click()
    page.wait_for_selector(".flash")
    assert "is the shadow of classification" in page.locator(".flash").inner_text()
    assert page.locator("[data-testid=served]").inner_text().split() == [deployment.name, "shadow"]
    row = page.locator("[data-testid=history] tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[1:] == [deployment.name, "shadow", previous_shadow, "tint-classifier v1 (pixels-8px)", "admin"]
    page.screenshot(path=str(screenshot_dir / "registry-version-shadow.png"), full_page=True)
    assert Deployment.objects.get(pk=deployment.pk).shadow_id == version.id

    page.click(f"[data-testid=history] >> text={deployment.name}")
    page.wait_for_url(re.compile(rf"/deployments/{deployment.id}/models/$"))
    assert "tint-classifier v1 (pixels-8px)" in page.locator("[data-role=shadow] .model-name").inner_text()
    page.screenshot(path=str(screenshot_dir / "registry-deployment-models.png"), full_page=True)
    page.goto(f"{live_server.url}/models/{model.id}/")
    page.screenshot(path=str(screenshot_dir / "registry-model.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/models/versions/{version.id}/")
    page.screenshot(path=str(screenshot_dir / "registry-version-390px.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off a phone's screen
    assert not problems, problems
