"""The admin's console in Chromium: an admin invites a labeler who accepts and lands on the deployments; the admin
creates a deployment with a label map, a client sends it a prediction, the admin retires a class and the ingest
refuses it with a JSON error naming it; the labeler opening an admin URL gets 403. Each page is photographed."""
import io
import re
import sys
import uuid
from pathlib import Path

import pytest
from PIL import Image

try:
    import loupe_sdk  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from loupe_sdk import Client
from loupe_sdk.exceptions import BadRequestError
from loupe_sdk.types.schemas_prediction import DetectionPredictionFormat

from dashboard.models import Deployment, Membership, PredictedAsset
from tests.browser.test_queue import log_in

pytestmark = pytest.mark.django_db(transaction=True)
NEW_PASSWORD = "a-long-new-password-42"


def png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, 120, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


def send(deployment, classes, shade):
    prediction = DetectionPredictionFormat(detection_classes=classes, detection_scores=[0.9] * len(classes),
                                           detection_boxes=[[2, 2, 20, 20]] * len(classes))
    return deployment.monitor_bytes(png(shade), "image/png", f"{uuid.uuid4().hex}.png", 0.04, 48, 64, prediction)


def test_invite_accept_create_retire_refuse_and_403(browser, page, live_server, users, organization, api_tokens,
                                                     screenshot_dir):
    problems = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and "status of 40" not in message.text else None)
    log_in(page, live_server, "admin")
    page.click("nav.nav >> text=Members")
    page.wait_for_url(re.compile(rf"/organizations/{organization.id}/members/$"))
    form = page.locator("[data-testid=invite-form]")
    form.locator("input[name=invitee]").fill("nora@example.com")
    form.locator("select[name=role]").select_option("labeler")
    form.locator("button").click()
    link = page.locator("[data-testid=invitation-link] input").input_value()
    assert "/invitations/inv_" in link
    assert "nora@example.com" in page.locator("[data-testid=invitations]").inner_text()
    page.screenshot(path=str(screenshot_dir / "admin-members.png"), full_page=True)

    # The invitee, in a browser of their own.
    invitee_context = browser.new_context(viewport={"width": 390, "height": 844})
    invitee = invitee_context.new_page()
    invitee.goto(link)
    invitee.screenshot(path=str(screenshot_dir / "admin-invitation-accept.png"), full_page=True)
    invitee.fill("input[name=username]", "nora")
    invitee.fill("input[name=password]", NEW_PASSWORD)
    invitee.fill("input[name=password_again]", NEW_PASSWORD)
    invitee.click("[data-testid=accept-form] button")
    invitee.wait_for_url(re.compile(r"/deployments/$"))
    assert "Welcome to Acme Vision" in invitee.content()
    assert Membership.objects.get(user__username="nora").role == "labeler"
    assert "Members" not in invitee.locator("nav.nav").inner_text()

    # The admin creates a deployment with a label map.
    page.goto(f"{live_server.url}/deployments/")
    page.click("[data-testid=new-deployment]")
    form = page.locator("[data-testid=deployment-form]")
    form.locator("input[name=name]").fill("loading-bay")
    form.locator("select[name=type]").select_option("OBJECT_DETECTION")
    form.locator("textarea[name=labels]").fill("1: pallet\nforklift")
    form.locator("input[name=min_threshold]").fill("1.5")
    form.locator("button").click()
    errors = page.locator("[data-testid=form-errors]").inner_text()
    assert "labels (line 2)" in errors and "min_threshold" in errors  # every refusal at once
    assert not Deployment.objects.filter(name="loading-bay").exists()
    page.screenshot(path=str(screenshot_dir / "admin-deployment-new-refused.png"), full_page=True)
    form = page.locator("[data-testid=deployment-form]")
    assert form.locator("input[name=name]").input_value() == "loading-bay"  # what was typed is kept
    form.locator("textarea[name=labels]").fill("1: pallet\n2: forklift\n3: person")
    form.locator("input[name=min_threshold]").fill("0.3")
    form.locator("input[name=tags]").fill("bay-4")
    page.screenshot(path=str(screenshot_dir / "admin-deployment-new.png"), full_page=True)
    form.locator("button").click()
    page.wait_for_url(re.compile(r"/deployments/[0-9a-f-]+/settings/$"))
    deployment_id = Deployment.objects.get(name="loading-bay").id

    client = Client(api_token=api_tokens["admin"], host=live_server.url)
    deployment = client.get_deployment("loading-bay")
    assert deployment.id == str(deployment_id)
    assert send(deployment, [2, 3], shade=10)["id"]

    page.reload()
    row = page.locator("[data-testid=labels] tr[data-class-id='2']")
    assert "in use" in row.inner_text()
    row.locator("button[value=retire]").click()
    page.wait_for_url(re.compile(r"/settings/$"))
    assert "retired" in page.locator("[data-testid=labels] tr[data-class-id='2']").inner_text()
    page.screenshot(path=str(screenshot_dir / "admin-deployment-settings.png"), full_page=True)

    with pytest.raises(BadRequestError) as refused:
        send(deployment, [1, 2], shade=20)
    error = refused.value.errors[0]
    assert error["field"] == "raw_predictions.detection_classes[1]" and "class 2 (forklift) is retired" in error["message"]
    assert PredictedAsset.objects.filter(deployment_id=deployment_id).count() == 1

    page.goto(f"{live_server.url}/organizations/{organization.id}/audit/")
    audit = page.locator("[data-testid=audit]").inner_text()
    assert "label.retired" in audit and "deployment.created" in audit and "invitation.accepted" in audit
    page.screenshot(path=str(screenshot_dir / "admin-audit-log.png"), full_page=True)

    answer = invitee.goto(f"{live_server.url}/organizations/{organization.id}/members/")
    assert answer.status == 403
    answer = invitee.goto(f"{live_server.url}/deployments/{deployment_id}/settings/")
    assert answer.status == 403
    invitee.screenshot(path=str(screenshot_dir / "admin-labeler-403.png"), full_page=True)
    invitee_context.close()
    assert problems == []


def test_a_superuser_creates_an_organization_and_its_admin_switches_to_it(page, live_server, users, django_user_model,
                                                                         screenshot_dir):
    from tests.fixtures import PASSWORD

    django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    log_in(page, live_server, "root")
    page.click("nav.nav >> text=Organizations")
    form = page.locator("[data-testid=organization-form]")
    form.locator("input[name=name]").fill("Initech")
    form.locator("input[name=admin]").fill("admin")
    form.locator("button").click()
    assert "Initech created; admin is its admin" in page.content()
    page.screenshot(path=str(screenshot_dir / "admin-organization-new.png"), full_page=True)

    page.click("text=Log out")
    log_in(page, live_server, "admin")
    switcher = page.locator("[data-testid=org-switch] select")
    assert switcher.locator("option").all_inner_texts() == ["Acme Vision", "Initech"]
    assert page.locator("h1").inner_text().endswith("of Acme Vision")
    switcher.select_option(label="Initech")  # htmx posts the choice on change and the page reloads
    from playwright.sync_api import expect

    expect(page.locator("h1")).to_contain_text("of Initech")
    assert "No deployments yet" in page.content()
    page.screenshot(path=str(screenshot_dir / "admin-org-switcher.png"), full_page=True)
