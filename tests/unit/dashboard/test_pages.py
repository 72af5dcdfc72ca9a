"""The core's pages through the test client: login, deployments, one deployment's page, images, API tokens."""
import re

import pytest
from django.test import Client

from dashboard.models import ApiToken, Data, PredictedAsset
from dashboard.services.auth import api_token_create
from monitoring.services.ingest import prediction_ingest

DET, SEG, CLS = "OBJECT_DETECTION", "SEGMENTATION", "CLASSIFICATION"
TOKEN_RE = re.compile(r"loupe_[A-Za-z0-9_-]{40,}")


@pytest.fixture
def member(client, users):
    """The test client, logged in as the organization's ML lead."""
    client.force_login(users["ml_lead"])
    return client


@pytest.fixture
def stranger(client, outsider):
    """The test client, logged in as the outsider (a member of the other organization only)."""
    client.force_login(outsider)
    return client


@pytest.fixture
def ingest(monitor_payload, deployments):
    def run(deployment_type=DET, **overrides):
        return prediction_ingest(deployment=deployments[deployment_type], payload=monitor_payload(deployment_type, **overrides)).asset

    return run


def page_url(deployment):
    return f"/deployments/{deployment.id}/"


def overlays(html: str) -> list[str]:
    return re.findall(r'<svg class="overlay".*?</svg>', html, flags=re.S)


# ---------------------------------------------------------------- login and anonymous visitors


def test_the_login_page_renders(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html and "csrfmiddlewaretoken" in html


def test_logging_in_with_a_password_leads_to_the_deployments(client, users):
    from tests.fixtures import PASSWORD

    response = client.post("/login/", {"username": "labeler", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/deployments/"
    assert client.get("/deployments/").status_code == 200


def test_a_wrong_password_is_refused(client, users):
    response = client.post("/login/", {"username": "labeler", "password": "nope"})
    assert response.status_code == 200 and "did not match" in response.content.decode()


def test_too_many_wrong_passwords_stop_a_usernames_tries_for_a_while(client, users):
    import datetime as dt

    from django.utils import timezone

    from dashboard.models import LoginFailure
    from dashboard.services.auth import LOGIN_FAILURE_WINDOW, LOGIN_FAILURES_ALLOWED
    from tests.fixtures import PASSWORD

    for _ in range(LOGIN_FAILURES_ALLOWED):
        assert "did not match" in client.post("/login/", {"username": "Labeler", "password": "guess"}).content.decode()
    # The right password now gets the same refusal as a wrong one: the password is not even checked.
    refused = client.post("/login/", {"username": "labeler", "password": PASSWORD})
    assert refused.status_code == 200 and "Too many failed log-ins" in refused.content.decode()
    assert "try again in 15 minutes" in refused.content.decode()
    assert LoginFailure.objects.count() == LOGIN_FAILURES_ALLOWED  # a refused try is not counted again
    # Another username is not affected.
    assert client.post("/login/", {"username": "admin", "password": PASSWORD}).status_code == 302
    client.logout()
    # Once the failures are older than the window, the username logs in again and its count starts over.
    LoginFailure.objects.update(at=timezone.now() - LOGIN_FAILURE_WINDOW - dt.timedelta(seconds=1))
    assert client.post("/login/", {"username": "labeler", "password": PASSWORD}).status_code == 302
    assert not LoginFailure.objects.filter(username="labeler").exists()


def test_failures_past_the_window_are_deleted_whoever_made_them(db):
    import datetime as dt

    from django.utils import timezone

    from dashboard.models import LoginFailure
    from dashboard.services.auth import LOGIN_FAILURE_WINDOW, login_attempted

    old = timezone.now() - LOGIN_FAILURE_WINDOW - dt.timedelta(minutes=1)
    LoginFailure.objects.bulk_create([LoginFailure(username=f"sprayed-{n}", at=old) for n in range(5)])
    login_attempted(username="Someone", succeeded=False)
    assert list(LoginFailure.objects.values_list("username", flat=True)) == ["someone"]


def test_the_admin_login_page_has_the_same_guard(client, users):
    from dashboard.services.auth import LOGIN_FAILURES_ALLOWED
    from tests.fixtures import PASSWORD

    users["admin"].is_staff = True
    users["admin"].save()
    for _ in range(LOGIN_FAILURES_ALLOWED):
        assert client.post("/admin/login/", {"username": "admin", "password": "guess"}).status_code == 200
    refused = client.post("/admin/login/", {"username": "admin", "password": PASSWORD})
    assert refused.status_code == 200 and "Too many failed log-ins" in refused.content.decode()


@pytest.mark.parametrize("path", ["/", "/deployments/", "/settings/tokens/"])
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_an_anonymous_visitor_is_sent_to_log_in_from_a_deployment_page_and_an_image(client, deployments, ingest):
    asset = ingest(DET)
    for path in (page_url(deployments[DET]), f"/data/{asset.data_id}/image"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == f"/login/?next={path}"


# ---------------------------------------------------------------- the deployments list


def test_the_deployments_list_shows_only_the_members_organization(member, deployments, other_deployment):
    html = member.get("/deployments/").content.decode()
    for deployment in deployments.values():
        assert page_url(deployment) in html and deployment.name in html
    assert other_deployment.name not in html and str(other_deployment.id) not in html


def test_an_outsiders_deployments_list_shows_only_theirs(stranger, deployments, other_deployment):
    html = stranger.get("/deployments/").content.decode()
    assert other_deployment.name in html
    assert all(str(deployment.id) not in html for deployment in deployments.values())


def test_the_deployments_list_shows_counts(member, deployments, ingest):
    ingest(DET)
    ingest(DET)
    html = member.get("/deployments/").content.decode()
    assert "2 to review" in html


# ---------------------------------------------------------------- one deployment's page


def test_the_deployment_page_shows_counts_and_models(member, deployments, ingest):
    deployment = deployments[DET]
    for _ in range(3):
        ingest(DET)
    html = member.get(page_url(deployment)).content.decode()
    assert '<strong data-count="TO_REVIEW">3</strong>' in html
    assert '<strong data-count="total">3</strong>' in html
    assert deployment.champion.model.name in html and deployment.shadow.name in html


def test_a_labeler_may_see_the_deployment_page(client, users, deployments):
    client.force_login(users["labeler"])
    assert client.get(page_url(deployments[DET])).status_code == 200


def test_the_latest_detection_is_drawn_as_rectangles_over_the_image(member, deployments, ingest):
    asset = ingest(DET)
    html = member.get(page_url(deployments[DET])).content.decode()
    [overlay] = overlays(html)
    assert 'viewBox="0 0 64 48"' in overlay
    assert re.search(r'<rect x="5" y="10" width="20" height="20"', overlay)
    assert re.search(r'<rect x="3" y="2" width="57" height="38"', overlay)
    assert "<polygon" not in overlay
    assert f"/data/{asset.data_id}/thumbnail" in html


def test_the_latest_segmentation_is_drawn_as_polygons(member, deployments, ingest):
    ingest(SEG)
    [overlay] = overlays(member.get(page_url(deployments[SEG])).content.decode())
    assert '<polygon points="5,5 30,5 30,20 5,20"' in overlay
    assert "<rect" not in overlay


def test_shapes_under_the_threshold_are_not_drawn(member, deployments, ingest):
    deployment = deployments[DET]
    deployment.min_threshold = 0.8
    deployment.save()
    ingest(DET)
    [overlay] = overlays(member.get(page_url(deployment)).content.decode())
    assert overlay.count("<rect") == 1 and 'width="20" height="20"' in overlay


def test_a_deployment_without_predictions_shows_how_to_send_them(member, deployments):
    html = member.get(page_url(deployments[CLS])).content.decode()
    assert "No predictions yet" in html and overlays(html) == []


def test_an_outsider_gets_404_for_a_deployment_page(stranger, deployments):
    assert stranger.get(page_url(deployments[DET])).status_code == 404


def test_an_unknown_deployment_page_is_a_404(member, deployments):
    assert member.get("/deployments/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_the_htmx_refresh_returns_only_the_latest_fragment(member, deployments, ingest):
    ingest(DET)
    response = member.get(page_url(deployments[DET]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode().strip()
    assert html.startswith('<div id="latest"') and html.endswith("</div>")
    assert "<html" not in html and "Label map" not in html
    assert len(overlays(html)) == 1
    assert "HX-Request" in response["Vary"]


# ---------------------------------------------------------------- images


def test_a_member_gets_the_image_bytes(member, ingest, jpeg_bytes):
    image = jpeg_bytes(64, 48, seed=99)
    asset = ingest(DET, image=image)
    response = member.get(f"/data/{asset.data_id}/image")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == image


def test_the_thumbnail_stands_in_with_the_image_until_it_is_made(member, ingest, jpeg_bytes):
    image = jpeg_bytes(64, 48, seed=98)
    asset = ingest(DET, image=image)
    response = member.get(f"/data/{asset.data_id}/thumbnail")
    assert response.status_code == 200 and b"".join(response.streaming_content) == image
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("kind", ["image", "thumbnail"])
def test_an_outsider_gets_404_for_an_image(stranger, ingest, kind):
    asset = ingest(DET)
    assert stranger.get(f"/data/{asset.data_id}/{kind}").status_code == 404


def test_an_unknown_image_is_a_404(member, db):
    assert member.get("/data/00000000-0000-0000-0000-000000000000/image").status_code == 404


# ---------------------------------------------------------------- headers and escaping


@pytest.mark.parametrize(
    "path",
    ["/login/", "/deployments/", "DEPLOYMENT", "/settings/tokens/", "IMAGE", "/deployments/00000000-0000-0000-0000-000000000000/"],
)
def test_every_page_carries_a_content_security_policy(member, deployments, ingest, path):
    asset = ingest(DET)
    path = {"DEPLOYMENT": page_url(deployments[DET]), "IMAGE": f"/data/{asset.data_id}/image"}.get(path, path)
    response = member.get(path)
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_an_html_filename_sent_through_the_api_is_escaped(member, deployments, ingest):
    ingest(DET, filename="<img src=x onerror=alert(1)>.jpg")
    html = member.get(page_url(deployments[DET])).content.decode()
    assert "<img src=x onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in html


def test_a_script_filename_is_escaped_in_the_page(member, deployments, ingest):
    asset = ingest(DET)
    # Set in the database, past the API's clean-up of paths (which would cut the name at its "/").
    Data.objects.filter(pk=asset.data_id).update(filename="<script>alert(1)</script>.png")
    PredictedAsset.objects.filter(pk=asset.pk).update(filename="<script>alert(1)</script>.png")
    html = member.get(page_url(deployments[DET])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in html


def test_a_deployment_name_is_escaped_in_the_list(member, deployments):
    deployments[CLS].name = '"><script>alert(2)</script>'
    deployments[CLS].save()
    html = member.get("/deployments/").content.decode()
    assert "<script>alert(2)</script>" not in html


# ---------------------------------------------------------------- API tokens page


def test_a_new_token_is_shown_once(member, users):
    response = member.post("/settings/tokens/", {"name": "camera-1 uploader"})
    assert response.status_code == 200
    shown = TOKEN_RE.findall(response.content.decode())
    assert len(shown) == 1
    token = ApiToken.objects.get(user=users["ml_lead"], name="camera-1 uploader")
    assert shown[0].startswith(token.prefix)

    again = member.get("/settings/tokens/").content.decode()
    assert shown[0] not in again and TOKEN_RE.findall(again) == []
    assert "camera-1 uploader" in again and token.prefix in again


def test_the_token_shown_is_a_working_api_token(member, api_login, deployments):
    html = member.post("/settings/tokens/", {"name": "script"}).content.decode()
    [plain] = TOKEN_RE.findall(html)
    assert api_login(plain, deployments[DET])


def test_a_token_needs_a_name(member, users):
    response = member.post("/settings/tokens/", {"name": "   "})
    assert response.status_code == 200 and "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.filter(user=users["ml_lead"]).exists()


def test_the_tokens_page_lists_only_ones_own_tokens(member, users):
    api_token_create(user=users["admin"], name="admins secret script")
    api_token_create(user=users["ml_lead"], name="my script")
    html = member.get("/settings/tokens/").content.decode()
    assert "my script" in html and "admins secret script" not in html


def test_revoking_a_token_makes_it_unusable(member, users, client, deployments):
    token, plain = api_token_create(user=users["ml_lead"], name="to revoke")
    response = member.post(f"/settings/tokens/{token.id}/revoke")
    assert response.status_code == 302 and response["Location"] == "/settings/tokens/"
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/organizations", headers={"Authorization": f"Bearer {plain}"}).status_code == 401


def test_revoking_needs_a_post(member, users):
    token, _ = api_token_create(user=users["ml_lead"], name="kept")
    assert member.get(f"/settings/tokens/{token.id}/revoke").status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_another_users_token_is_a_404(member, users):
    token, _ = api_token_create(user=users["admin"], name="not yours")
    assert member.post(f"/settings/tokens/{token.id}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.fixture
def csrf_client(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["ml_lead"])
    return client


def test_revoking_without_a_csrf_token_is_refused(csrf_client, users):
    token, _ = api_token_create(user=users["ml_lead"], name="kept")
    response = csrf_client.post(f"/settings/tokens/{token.id}/revoke")
    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_creating_a_token_without_a_csrf_token_is_refused(csrf_client, users):
    assert csrf_client.post("/settings/tokens/", {"name": "sneaky"}).status_code == 403
    assert not ApiToken.objects.filter(name="sneaky").exists()


def test_revoking_with_the_pages_csrf_token_works(csrf_client, users):
    token, _ = api_token_create(user=users["ml_lead"], name="to revoke")
    html = csrf_client.get("/settings/tokens/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = csrf_client.post(f"/settings/tokens/{token.id}/revoke", {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
