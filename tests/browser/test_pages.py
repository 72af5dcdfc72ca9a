"""The first pages in a real browser: log in, see one's deployments, a deployment's predictions, API tokens."""
import re

import pytest

from dashboard.models import ApiToken
from dashboard.services.auth import api_token_authenticate
from monitoring.services.ingest import prediction_ingest
from tests.browser.test_queue import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_member_sees_deployments_and_latest_predictions(page, live_server, users, deployments, other_deployment,
                                                          monitor_payload, screenshot_dir):
    for deployment_type, deployment in deployments.items():
        prediction_ingest(deployment=deployment, payload=monitor_payload(deployment_type, with_shadow=True))
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    log_in(page, live_server, "ml_lead")
    cards = page.locator(".deployment-card h2").all_inner_texts()
    assert sorted(cards) == sorted(d.name for d in deployments.values())
    assert other_deployment.name not in cards
    page.screenshot(path=str(screenshot_dir / "deployments.png"), full_page=True)

    page.click(f"text={deployments['OBJECT_DETECTION'].name}")
    page.wait_for_url(re.compile(r"/deployments/[0-9a-f-]+/$"))
    assert page.locator("[data-count=TO_REVIEW]").inner_text() == "1"
    assert page.locator("#latest .thumb svg rect").count() == 2
    assert page.locator("#latest .thumb svg image").evaluate("image => image.getBBox().width") > 0
    page.screenshot(path=str(screenshot_dir / "deployment-detection.png"), full_page=True)

    page.goto(f"{live_server.url}/deployments/{deployments['SEGMENTATION'].id}/")
    assert page.locator("#latest .thumb svg polygon").count() == 1
    page.goto(f"{live_server.url}/deployments/{deployments['CLASSIFICATION'].id}/")
    assert page.locator("#latest .class-chip").inner_text().startswith("person")
    page.screenshot(path=str(screenshot_dir / "deployment-classification.png"), full_page=True)
    assert not [error for error in errors if "Content Security Policy" in error], errors


def test_wrong_password_is_refused(page, live_server, users):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "labeler")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    assert "did not match" in page.locator(".flash-error").inner_text()
    assert page.url.endswith("/login/")


def test_too_many_wrong_passwords_are_stopped_with_a_message(page, live_server, users, screenshot_dir):
    from dashboard.models import LoginFailure
    from dashboard.services.auth import LOGIN_FAILURES_ALLOWED, login_attempted
    from tests.fixtures import PASSWORD

    for _ in range(LOGIN_FAILURES_ALLOWED):
        login_attempted(username="labeler", succeeded=False)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "labeler")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    assert "Too many failed log-ins" in page.locator(".flash-error").inner_text()
    assert page.url.endswith("/login/") and LoginFailure.objects.count() == LOGIN_FAILURES_ALLOWED
    page.screenshot(path=str(screenshot_dir / "login-throttled.png"), full_page=True)
    # The Django admin's login page says the same.
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "labeler")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    assert "Too many failed log-ins" in page.locator(".errornote").inner_text()
    page.screenshot(path=str(screenshot_dir / "admin-login-throttled.png"), full_page=True)


def test_member_creates_sees_once_and_revokes_a_token(page, live_server, users, screenshot_dir):
    log_in(page, live_server, "admin")
    page.click("text=API tokens")
    page.fill("#token-name", "camera-1 uploader")
    page.click("text=Create token")
    plain = page.locator(".token-value").input_value()
    assert plain.startswith("loupe_")
    assert api_token_authenticate(plain=plain) == users["admin"]
    page.screenshot(path=str(screenshot_dir / "tokens.png"), full_page=True)

    page.goto(f"{live_server.url}/settings/tokens/")
    assert plain not in page.content(), "a token is shown once"
    page.click("text=Revoke")
    assert "revoked" in page.locator(".flash").inner_text()
    assert ApiToken.objects.get(name="camera-1 uploader").revoked_at is not None
