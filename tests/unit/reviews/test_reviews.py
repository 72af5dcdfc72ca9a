"""Reviews: the service's rules (validation, optimistic locking, history, one-way status), bulk accept, API, pages."""
import json

import pytest

from dashboard.errors import Conflict, ValidationFailed
from dashboard.models import AssetStatus, PredictedAsset
from monitoring.services.ingest import prediction_ingest
from reviews.models import Review, ReviewKind
from reviews.services.review import bulk_accept, review_submit
from tests.fixtures import PASSWORD

DET, CLS = "OBJECT_DETECTION", "CLASSIFICATION"
BOX = {"type": "rectangle", "label_id": 1, "x": 2, "y": 3, "w": 10, "h": 8}


@pytest.fixture
def ingest(monitor_payload, deployments):
    def run(deployment_type=DET, **overrides):
        return prediction_ingest(deployment=deployments[deployment_type],
                                 payload=monitor_payload(deployment_type, **overrides)).asset
    return run


@pytest.fixture
def api(client):
    def post(path, token, body):
        return client.post(path, data=json.dumps(body), content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})
    return post


def test_review_saves_shapes_bumps_version_and_keeps_history(ingest, users):
    asset = ingest()
    saved = review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=[BOX], expected_version=1)
    assert (saved.status, saved.version, saved.reviewed_by, saved.reviewed_shapes) == (
        AssetStatus.REVIEWED, 2, users["labeler"], [{k: v for k, v in BOX.items()}])
    again = review_submit(asset_id=asset.pk, reviewer=users["admin"], shapes=[], expected_version=2)
    assert again.version == 3 and again.reviewed_shapes == [] and again.status == AssetStatus.REVIEWED
    history = list(Review.objects.filter(asset=asset).order_by("created_at", "id").values_list("based_on_version", "kind"))
    assert history == [(1, ReviewKind.REVIEW), (2, ReviewKind.REVIEW)]


def test_stale_version_conflicts_and_names_the_stored_review(ingest, users):
    asset = ingest()
    review_submit(asset_id=asset.pk, reviewer=users["admin"], shapes=[BOX], expected_version=1)
    with pytest.raises(Conflict) as caught:
        review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=[], expected_version=1)
    assert caught.value.extra["version"] == 2
    assert caught.value.extra["reviewed_by"] == "admin"
    assert caught.value.extra["reviewed_shapes"][0]["x"] == 2
    assert Review.objects.filter(asset=asset).count() == 1


def test_submitted_asset_cannot_be_reviewed_again(ingest, users):
    asset = ingest()
    PredictedAsset.objects.filter(pk=asset.pk).update(status=AssetStatus.SUBMITTED)
    with pytest.raises(Conflict, match="submitted"):
        review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=[BOX], expected_version=None)
    assert PredictedAsset.objects.get(pk=asset.pk).status == AssetStatus.SUBMITTED


@pytest.mark.parametrize("shape, field", [
    ({**BOX, "label_id": 99}, "shapes[0].label_id"),
    ({**BOX, "x": float("nan")}, "shapes[0].x"),
    ({**BOX, "w": 100}, "shapes[0]"),
    ({**BOX, "h": 0}, "shapes[0].h"),
    ({"type": "polygon", "label_id": 1, "points": [[0, 0], [10, 0]]}, "shapes[0].points"),
    ({"type": "polygon", "label_id": 1, "points": [[0, 0], [10, 0], [70, 5]]}, "shapes[0].points[2]"),
    ({"type": "classification", "label_id": 1}, "shapes[0].type"),
])
def test_invalid_shapes_are_refused_with_the_field(ingest, users, shape, field):
    asset = ingest()  # 64×48
    with pytest.raises(ValidationFailed) as caught:
        review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=[shape], expected_version=None)
    assert caught.value.errors[0].field == field
    assert PredictedAsset.objects.get(pk=asset.pk).status == AssetStatus.TO_REVIEW


def test_classification_takes_exactly_one_class(ingest, users):
    asset = ingest(CLS)
    with pytest.raises(ValidationFailed, match="exactly one"):
        review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=[], expected_version=None)
    saved = review_submit(asset_id=asset.pk, reviewer=users["labeler"],
                          shapes=[{"type": "classification", "label_id": 2}], expected_version=None)
    assert saved.reviewed_shapes == [{"type": "classification", "label_id": 2}]


def test_bulk_accept_keeps_shapes_over_the_cut_and_skips_submitted(ingest, users, deployments):
    raw = {"detection_classes": [1, 2, 3], "detection_scores": [0.2, 0.6, 0.9],
           "detection_boxes": [[1, 1, 10, 10], [2, 2, 20, 20], [3, 3, 30, 30]]}
    first, second, submitted = (ingest(raw_predictions=raw) for _ in range(3))
    PredictedAsset.objects.filter(pk=submitted.pk).update(status=AssetStatus.SUBMITTED)
    count = bulk_accept(deployment=deployments[DET], assets=PredictedAsset.objects.all(), reviewer=users["labeler"],
                        min_score=0.5)
    assert count == 2
    for asset in (first, second):
        asset.refresh_from_db()
        assert [shape["score"] for shape in asset.reviewed_shapes] == [0.6, 0.9]
        assert asset.status == AssetStatus.REVIEWED and asset.version == 2
    assert Review.objects.filter(kind=ReviewKind.BULK_ACCEPT).count() == 2
    assert PredictedAsset.objects.get(pk=submitted.pk).reviewed_shapes is None


def test_api_saves_a_review_for_any_member(ingest, api, api_tokens):
    asset = ingest()
    body = {"rectangles": [{"x": 1, "y": 2, "w": 5, "h": 6, "label_id": 2}],
            "polygons": [{"points": [[0, 0], [10, 0], [10, 10]], "label_id": 3}]}
    response = api(f"/api/predicted/asset/{asset.pk}/reviews", api_tokens["labeler"], body)
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "REVIEWED" and response.json()["version"] == 2
    assert [shape["type"] for shape in response.json()["review"]["shapes"]] == ["rectangle", "polygon"]

    stale = api(f"/api/predicted/asset/{asset.pk}/reviews", api_tokens["admin"], {**body, "expected_version": 1})
    assert stale.status_code == 409
    assert stale.json()["version"] == 2 and stale.json()["reviewed_by"] == "labeler"


def test_api_errors_name_the_clients_fields(ingest, api, api_tokens):
    asset = ingest()
    body = {"rectangles": [{"x": 1, "y": 2, "w": 5, "h": 6, "label_id": 1}, {"x": 1, "y": 2, "w": 500, "h": 6, "label_id": 1}],
            "polygons": [{"points": [[0, 0], [1, 0], [1, 1]], "label_id": 42}]}
    response = api(f"/api/predicted/asset/{asset.pk}/reviews", api_tokens["labeler"], body)
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["rectangles[1]", "polygons[0].label_id"]
    missing = api(f"/api/predicted/asset/{asset.pk}/reviews", api_tokens["labeler"], {"rectangles": [{"x": 1}]})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "rectangles[0].label_id"


def test_api_hides_the_asset_from_outsiders(ingest, api, outsider_token):
    asset = ingest()
    response = api(f"/api/predicted/asset/{asset.pk}/reviews", outsider_token, {"rectangles": []})
    assert response.status_code == 404
    assert PredictedAsset.objects.get(pk=asset.pk).status == AssetStatus.TO_REVIEW


def test_tool_page_and_page_save(client, ingest, users, deployments):
    first, second = ingest(), ingest()
    client.login(username="labeler", password=PASSWORD)
    deployment = deployments[DET]
    page = client.get(f"/deployments/{deployment.id}/assets/{first.pk}/review?sort=-timestamp")
    assert page.status_code == 200 and b"review-data" in page.content
    url = f"/deployments/{deployment.id}/assets/{first.pk}/review/save"
    saved = client.post(url, data=json.dumps({"shapes": [BOX], "expected_version": 1, "kind": "accept"}),
                        content_type="application/json")
    assert saved.json() == {"version": 2, "status": "REVIEWED"}
    assert Review.objects.get(asset=first).kind == ReviewKind.ACCEPT
    stale = client.post(url, data=json.dumps({"shapes": [], "expected_version": 1}), content_type="application/json")
    assert stale.status_code == 409 and stale.json()["reviewed_shapes"][0]["label_id"] == 1


def test_page_save_is_csrf_checked_needs_a_login_and_stays_in_its_deployment(ingest, users, deployments):
    from django.test import Client

    asset = ingest()
    url = f"/deployments/{deployments[DET].id}/assets/{asset.pk}/review/save"
    body = json.dumps({"shapes": [BOX], "expected_version": 1})
    browser = Client(enforce_csrf_checks=True)
    anonymous = browser.get("/login/").cookies["csrftoken"].value
    refused = browser.post(url, data=body, content_type="application/json", headers={"X-CSRFToken": anonymous})
    assert refused.status_code == 401 and "log in" in refused.json()["message"]
    browser.login(username="labeler", password=PASSWORD)
    assert browser.post(url, data=body, content_type="application/json").status_code == 403  # no CSRF token
    page = browser.get(f"/deployments/{deployments[DET].id}/assets/{asset.pk}/review")
    token = page.cookies["csrftoken"].value
    saved = browser.post(url, data=body, content_type="application/json", headers={"X-CSRFToken": token})
    assert saved.json() == {"version": 2, "status": "REVIEWED"}
    elsewhere = f"/deployments/{deployments[CLS].id}/assets/{asset.pk}/review/save"
    wrong = browser.post(elsewhere, data=body, content_type="application/json", headers={"X-CSRFToken": token})
    assert wrong.status_code == 404 and "not found" in wrong.json()["message"]
    malformed = browser.post(url, data="[1]", content_type="application/json", headers={"X-CSRFToken": token})
    assert malformed.status_code == 400 and malformed.json()["errors"][0]["field"] == "body"


def test_bulk_accept_pages_confirm_then_accept(client, ingest, users, deployments):
    assets = [ingest() for _ in range(3)]
    deployment = deployments[DET]
    client.login(username="labeler", password=PASSWORD)
    url = f"/deployments/{deployment.id}/queue/accept"
    confirm = client.get(url, {"asset": [str(assets[0].pk), str(assets[1].pk)], "min_score": "0.1"})
    assert b"Accept 2 predictions" in confirm.content
    done = client.post(url, {"scope": "all", "q": "", "min_score": "0.1"})
    assert b"3 predictions accepted" in done.content
    assert PredictedAsset.objects.filter(status=AssetStatus.REVIEWED).count() == 3
    assert b"No prediction ticked" in client.get(url, {"scope": "selected"}).content


def test_bulk_pages_send_a_visitor_to_log_in_and_refuse_other_methods(client, ingest, users, deployments):
    ingest()
    for action in ("accept", "submit"):
        url = f"/deployments/{deployments[DET].id}/queue/{action}"
        response = client.post(url, {"scope": "all"})
        assert response.status_code == 302 and response["Location"].startswith("/login/")
        client.force_login(users["labeler"])
        assert client.put(url).status_code == 405
        client.logout()
    assert not PredictedAsset.objects.filter(status=AssetStatus.REVIEWED).exists()


def test_outsider_gets_404_on_tool_pages(client, ingest, outsider, deployments):
    asset = ingest()
    client.login(username="outsider", password=PASSWORD)
    assert client.get(f"/deployments/{deployments[DET].id}/assets/{asset.pk}/review").status_code == 404


class ClientTransport:
    """The SDK's transport over Django's test client: the real API view answers, errors typed as the SDK types them."""

    encode = staticmethod(json.dumps)  # the `json` argument below shadows the module

    def __init__(self, client, token):
        self.client, self.token = client, token

    def platform(self, method, path, *, params=None, json=None):
        from loupe_sdk.exceptions import error_for_status

        response = self.client.generic(method, path, data=self.encode(json), content_type="application/json",
                                       headers={"Authorization": f"Bearer {self.token}"})
        if response.status_code >= 400:
            raise error_for_status(response.status_code, response.json(), "error")
        return response.json()


def test_sdk_add_review_takes_tuples_and_raises_conflict(client, ingest, api_tokens):
    from loupe_sdk import PredictedAsset as SdkAsset
    from loupe_sdk.exceptions import ConflictError

    asset = ingest()
    sdk_asset = SdkAsset({"id": str(asset.pk), "version": 1}, ClientTransport(client, api_tokens["labeler"]))
    updated = sdk_asset.add_review(rectangles=[(1, 2, 5, 6, 2), {"x": 0, "y": 0, "w": 3, "h": 3, "label_id": 1}])
    assert updated.status == "REVIEWED" and updated.version == 2
    assert [shape["label_id"] for shape in updated.get_review()["shapes"]] == [2, 1]
    with pytest.raises(ConflictError) as caught:
        sdk_asset.add_review(rectangles=[], expected_version=1)
    assert caught.value.status_code == 409 and caught.value.payload["version"] == 2


def test_a_review_makes_its_classes_searchable_and_a_new_review_replaces_them(ingest, users, deployments):
    from dashboard.selectors.assets import predicted_assets_matching

    asset, other = ingest(), ingest()
    review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=[BOX], expected_version=1)
    matching = lambda q: set(predicted_assets_matching(deployment=deployments[DET], query=q).values_list("pk", flat=True))  # noqa: E731
    assert matching("reviewed_label:car") == {asset.pk} and matching("reviewed_label:1") == {asset.pk}
    review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=[{**BOX, "label_id": 2}], expected_version=2)
    assert matching("reviewed_label:car") == set() and matching("reviewed_label:person") == {asset.pk}
    bulk_accept(deployment=deployments[DET], assets=PredictedAsset.objects.filter(pk=other.pk),
                reviewer=users["admin"], min_score=0.0)
    assert other.pk in matching("reviewed_label:car")
