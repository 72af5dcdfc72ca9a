"""The feedback loop (setup, attach, detach, toggle, submit): services, API, page."""
import json

import pytest

from dashboard.errors import ValidationFailed
from dashboard.models import AssetStatus, DatasetAsset, PredictedAsset
from dashboard.services.datasets import dataset_create, dataset_version_create
from monitoring.services.ingest import prediction_ingest
from pipelines.models import FeedbackLoop
from pipelines.services.feedback_loop import feedback_loop_setup, feedback_loop_submit

DET = "OBJECT_DETECTION"
BOX = {"type": "rectangle", "label_id": 2, "score": 1.0, "x": 1, "y": 2, "w": 10, "h": 12}


@pytest.fixture
def detection(deployments):
    return deployments[DET]


@pytest.fixture
def dataset_versions(organization):
    """Two empty OBJECT_DETECTION versions, v1 and v2, of a dataset "fl"."""
    dataset = dataset_create(organization=organization, name="fl")
    return [dataset_version_create(dataset=dataset, version=name, type=DET) for name in ("v1", "v2")]


@pytest.fixture
def assets(detection, monitor_payload, users):
    """assets(n, status=REVIEWED) -> n new predicted assets of the detection deployment, reviewed with BOX."""

    def make(n, status=AssetStatus.REVIEWED):
        made = []
        for _ in range(n):
            asset = prediction_ingest(deployment=detection, payload=monitor_payload(DET)).asset
            if status != AssetStatus.TO_REVIEW:
                PredictedAsset.objects.filter(pk=asset.pk).update(
                    status=status, reviewed_shapes=[BOX], reviewed_by=users["labeler"], version=2
                )
            made.append(PredictedAsset.objects.get(pk=asset.pk))
        return made

    return make


@pytest.fixture
def api(client):
    def call(method, path, token, body=None):
        kwargs = {"headers": {"Authorization": f"Bearer {token}"}}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method.lower())(path, **kwargs)

    return call


def field_of(response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


# ---------------------------------------------------------------- setup, attach, detach, toggle


def test_setup_is_repeatable_and_attaches_the_version_given(api, api_tokens, detection, dataset_versions):
    path = f"/api/deployment/{detection.id}/pipeline/fl/setup"
    first = api("POST", path, api_tokens["admin"], {})
    assert first.status_code == 200 and first.json()["active"] is True and first.json()["dataset_versions"] == []
    again = api("POST", path, api_tokens["admin"], {"dataset_version_id": str(dataset_versions[0].id)})
    assert [v["id"] for v in again.json()["dataset_versions"]] == [str(dataset_versions[0].id)]
    assert FeedbackLoop.objects.count() == 1


def test_attach_detach_and_list(api, api_tokens, detection, dataset_versions):
    base = f"/api/deployment/{detection.id}"
    api("POST", base + "/pipeline/fl/setup", api_tokens["admin"], {})
    for version in dataset_versions:
        assert api("POST", base + "/fl/datasets", api_tokens["admin"], {"dataset_version_id": str(version.id)}).status_code == 200
    listed = api("GET", base + "/fl/datasets", api_tokens["labeler"]).json()["items"]
    assert [(v["dataset_name"], v["version"], v["asset_count"]) for v in listed] == [("fl", "v1", 0), ("fl", "v2", 0)]
    gone = api("DELETE", base + "/fl/datasets", api_tokens["admin"], {"dataset_version_id": str(dataset_versions[0].id)})
    assert [v["version"] for v in gone.json()["dataset_versions"]] == ["v2"]
    again = api("DELETE", base + "/fl/datasets", api_tokens["admin"], {"dataset_version_id": str(dataset_versions[0].id)})
    assert again.status_code == 400 and field_of(again) == ["dataset_version_id"]


def test_attach_needs_a_loop_a_version_of_the_type_and_the_organization(
    api, api_tokens, detection, deployments, dataset_versions, other_organization
):
    base = f"/api/deployment/{detection.id}"
    body = {"dataset_version_id": str(dataset_versions[0].id)}
    assert field_of(api("POST", base + "/fl/datasets", api_tokens["admin"], body)) == ["feedback_loop"]
    api("POST", base + "/pipeline/fl/setup", api_tokens["admin"], {})
    foreign = dataset_version_create(dataset=dataset_create(organization=other_organization, name="x"), version="v1", type=DET)
    response = api("POST", base + "/fl/datasets", api_tokens["admin"], {"dataset_version_id": str(foreign.id)})
    assert response.status_code == 404 and "dataset_version_id" in response.json()["message"]
    segmentation = deployments["SEGMENTATION"]
    api("POST", f"/api/deployment/{segmentation.id}/pipeline/fl/setup", api_tokens["admin"], {})
    wrong = api("POST", f"/api/deployment/{segmentation.id}/fl/datasets", api_tokens["admin"], body)
    assert wrong.status_code == 400 and field_of(wrong) == ["dataset_version_id"]
    malformed = api("POST", base + "/fl/datasets", api_tokens["admin"], {"dataset_version_id": "nope"})
    assert malformed.status_code == 400 and field_of(malformed) == ["dataset_version_id"]
    assert field_of(api("POST", base + "/fl/datasets", api_tokens["admin"], {})) == ["dataset_version_id"]


def test_toggle(api, api_tokens, detection):
    path = f"/api/deployment/{detection.id}/pipeline/fl"
    assert field_of(api("PUT", path, api_tokens["admin"], {"active": False})) == ["feedback_loop"]
    api("POST", path + "/setup", api_tokens["admin"], {})
    assert api("PUT", path, api_tokens["admin"], {"active": False}).json()["active"] is False
    assert FeedbackLoop.objects.get().active is False
    assert field_of(api("PUT", path, api_tokens["admin"], {"active": "yes"})) == ["active"]
    assert field_of(api("PUT", path, api_tokens["admin"], {})) == ["active"]
    assert api("GET", path, api_tokens["labeler"]).json()["active"] is False


@pytest.mark.parametrize("method, suffix, body", [
    ("POST", "/pipeline/fl/setup", {}),
    ("PUT", "/pipeline/fl", {"active": True}),
    ("POST", "/fl/datasets", {"dataset_version_id": "00000000-0000-0000-0000-000000000000"}),
    ("DELETE", "/fl/datasets", {"dataset_version_id": "00000000-0000-0000-0000-000000000000"}),
    ("POST", "/pipeline/td/setup", {"dataset_version_id": "00000000-0000-0000-0000-000000000000"}),
    ("PUT", "/pipeline/td/disable", {}),
])
def test_changes_need_an_admin_and_outsiders_get_404(api, api_tokens, outsider_token, detection, method, suffix, body):
    path = f"/api/deployment/{detection.id}{suffix}"
    for role in ("labeler", "ml_lead"):
        assert api(method, path, api_tokens[role], body).status_code == 403
    assert api(method, path, outsider_token, body).status_code == 404


@pytest.mark.parametrize("method, suffix", [
    ("GET", "/fl/datasets"), ("GET", "/pipeline/td/check"), ("GET", "/pipeline/fl"), ("POST", "/pipeline/fl/submit"),
])
def test_reads_and_submit_are_for_members_only(api, api_tokens, outsider_token, detection, method, suffix):
    path = f"/api/deployment/{detection.id}{suffix}"
    body = {"predicted_asset_ids": []} if method == "POST" else None
    assert api(method, path, outsider_token, body).status_code == 404
    assert api(method, path, api_tokens["labeler"], body).status_code in (200, 400)


# ---------------------------------------------------------------- submit


@pytest.fixture
def loop(detection, dataset_versions):
    return feedback_loop_setup(deployment=detection, dataset_version=dataset_versions[0])


def test_submit_adds_only_reviewed_assets_with_their_review(api, api_tokens, detection, loop, assets, dataset_versions):
    reviewed, to_review, submitted = assets(2), assets(1, AssetStatus.TO_REVIEW), assets(1, AssetStatus.SUBMITTED)
    ids = [str(a.id) for a in reviewed + to_review + submitted]
    response = api("POST", f"/api/deployment/{detection.id}/pipeline/fl/submit", api_tokens["labeler"],
                   {"predicted_asset_ids": ids})
    assert response.status_code == 200 and response.json() == {"submitted": 2, "skipped": 2, "added": 2, "updated": 0}
    added = DatasetAsset.objects.filter(version=dataset_versions[0]).select_related("annotation")
    assert {a.source_asset_id for a in added} == {a.id for a in reviewed}
    first = added.get(source_asset=reviewed[0])
    assert first.annotation.shapes == [BOX] and first.data_id == reviewed[0].data_id
    assert (first.width, first.height, first.filename) == (64, 48, "frame.jpg")
    for asset in reviewed:
        asset.refresh_from_db()
        assert (asset.status, asset.version) == (AssetStatus.SUBMITTED, 3)
    to_review[0].refresh_from_db()
    assert to_review[0].status == AssetStatus.TO_REVIEW
    assert FeedbackLoop.objects.get().submitted_since_training == 2
    dataset_versions[0].refresh_from_db()
    assert dataset_versions[0].labels["2"] == "person"  # learnt from the deployment's label map


def test_submitting_twice_adds_nothing_twice(detection, loop, assets, dataset_versions):
    reviewed = assets(2)
    queryset = PredictedAsset.objects.filter(pk__in=[a.pk for a in reviewed])
    assert feedback_loop_submit(deployment=detection, assets=queryset).submitted == 2
    with pytest.raises(ValidationFailed) as caught:
        feedback_loop_submit(deployment=detection, assets=queryset)
    assert caught.value.errors[0].field == "predicted_asset_ids" and "2 SUBMITTED" in caught.value.errors[0].message
    assert DatasetAsset.objects.count() == 2 and FeedbackLoop.objects.get().submitted_since_training == 2


def test_a_racing_submit_that_read_the_assets_as_reviewed_claims_none(detection, loop, assets):
    reviewed = assets(3)
    stale = [PredictedAsset.objects.get(pk=a.pk) for a in reviewed]  # read as REVIEWED, like a concurrent request

    class StaleQuerySet:
        """What the second request saw before the first committed: every asset still REVIEWED."""

        def filter(self, **_):
            return self

        def select_related(self, *_):
            return self

        def order_by(self, *_):
            return stale

    first = feedback_loop_submit(deployment=detection, assets=PredictedAsset.objects.filter(pk__in=[a.pk for a in reviewed]))
    second = feedback_loop_submit(deployment=detection, assets=StaleQuerySet())
    assert (first.submitted, second.submitted, second.skipped) == (3, 0, 3)
    assert DatasetAsset.objects.count() == 3
    assert set(PredictedAsset.objects.values_list("version", flat=True)) == {3}
    assert FeedbackLoop.objects.get().submitted_since_training == 3


def test_submit_goes_to_every_attached_version(api, api_tokens, detection, loop, assets, dataset_versions):
    api("POST", f"/api/deployment/{detection.id}/fl/datasets", api_tokens["admin"],
        {"dataset_version_id": str(dataset_versions[1].id)})
    reviewed = assets(1)
    feedback_loop_submit(deployment=detection, assets=PredictedAsset.objects.filter(pk=reviewed[0].pk))
    assert sorted(DatasetAsset.objects.values_list("version__version", flat=True)) == ["v1", "v2"]
    assert FeedbackLoop.objects.get().submitted_since_training == 1


def test_submit_by_query(api, api_tokens, detection, loop, assets):
    assets(2)
    assets(1, AssetStatus.TO_REVIEW)
    response = api("POST", f"/api/deployment/{detection.id}/pipeline/fl/submit", api_tokens["labeler"],
                   {"q": "status:REVIEWED"})
    assert response.json() == {"submitted": 2, "skipped": 0, "added": 2, "updated": 0}
    again = api("POST", f"/api/deployment/{detection.id}/pipeline/fl/submit", api_tokens["labeler"], {"q": ""})
    assert again.json() == {"submitted": 0, "skipped": 3, "added": 0, "updated": 0} or again.status_code == 400
    bad = api("POST", f"/api/deployment/{detection.id}/pipeline/fl/submit", api_tokens["labeler"], {"q": "status:"})
    assert bad.status_code == 400


@pytest.mark.parametrize("body, field", [
    ({}, "predicted_asset_ids"),
    ({"predicted_asset_ids": [], "q": "x"}, "predicted_asset_ids"),
    ({"predicted_asset_ids": []}, "predicted_asset_ids"),
    ({"predicted_asset_ids": ["nope"]}, "predicted_asset_ids[0]"),
    ({"predicted_asset_ids": ["00000000-0000-0000-0000-000000000000"]}, "predicted_asset_ids[0]"),
    ({"q": 3}, "q"),
])
def test_submit_refuses_bad_bodies_naming_the_field(api, api_tokens, detection, loop, body, field):
    response = api("POST", f"/api/deployment/{detection.id}/pipeline/fl/submit", api_tokens["labeler"], body)
    assert response.status_code == 400 and field in field_of(response)


def test_submit_of_nothing_reviewed_says_so(api, api_tokens, detection, loop, assets):
    ids = [str(a.id) for a in assets(2, AssetStatus.TO_REVIEW)]
    response = api("POST", f"/api/deployment/{detection.id}/pipeline/fl/submit", api_tokens["labeler"],
                   {"predicted_asset_ids": ids})
    assert response.status_code == 400 and field_of(response) == ["predicted_asset_ids"]
    assert "2 TO_REVIEW" in response.json()["message"]


def test_submit_needs_an_active_loop_with_a_version(api, api_tokens, detection, assets, dataset_versions):
    ids = [str(a.id) for a in assets(1)]
    path = f"/api/deployment/{detection.id}/pipeline/fl"
    assert field_of(api("POST", path + "/submit", api_tokens["labeler"], {"predicted_asset_ids": ids})) == ["feedback_loop"]
    api("POST", path + "/setup", api_tokens["admin"], {})
    assert field_of(api("POST", path + "/submit", api_tokens["labeler"], {"predicted_asset_ids": ids})) == ["dataset_version_id"]
    api("POST", f"/api/deployment/{detection.id}/fl/datasets", api_tokens["admin"], {"dataset_version_id": str(dataset_versions[0].id)})
    api("PUT", path, api_tokens["admin"], {"active": False})
    assert field_of(api("POST", path + "/submit", api_tokens["labeler"], {"predicted_asset_ids": ids})) == ["feedback_loop"]
    assert PredictedAsset.objects.get().status == AssetStatus.REVIEWED and not DatasetAsset.objects.exists()


# ---------------------------------------------------------------- page


def test_settings_page_admin_changes_labeler_browses_outsider_404(client, users, outsider, detection, dataset_versions):
    path = f"/deployments/{detection.id}/feedback-loop/"
    client.force_login(users["admin"])
    assert b"Set up the feedback loop" in client.get(path).content
    assert client.post(path, {"action": "setup"}).status_code == 302
    client.post(path, {"action": "attach", "dataset_version_id": dataset_versions[0].id})
    client.post(path, {"action": "deactivate"})
    loop = FeedbackLoop.objects.get()
    assert loop.active is False and list(loop.dataset_versions.all()) == [dataset_versions[0]]
    client.post(path, {"action": "detach", "dataset_version_id": dataset_versions[0].id})
    assert not loop.dataset_versions.exists()
    response = client.post(path, {"action": "training", "dataset_version_id": dataset_versions[1].id}, follow=True)
    assert b"has no images" in response.content
    client.force_login(users["labeler"])
    page = client.get(path)
    assert page.status_code == 200 and b"inactive" in page.content and b'name="action"' not in page.content
    assert client.post(path, {"action": "activate"}).status_code == 403
    client.force_login(outsider)
    assert client.get(path).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_submits_at_once_add_each_asset_once(detection, loop, assets):
    """Two requests in their own threads and connections: whichever claims an asset adds it; none lands twice."""
    import threading

    from django.db import connection

    reviewed = assets(5)
    ids = [a.pk for a in reviewed]
    barrier, results = threading.Barrier(2), []

    def submit():
        try:
            barrier.wait()
            results.append(feedback_loop_submit(deployment=detection, assets=PredictedAsset.objects.filter(pk__in=ids)))
        except ValidationFailed as error:  # the later one may find nothing REVIEWED left
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    submitted = sum(r.submitted for r in results if not isinstance(r, ValidationFailed))
    assert len(results) == 2 and submitted == 5
    assert DatasetAsset.objects.count() == 5 and FeedbackLoop.objects.get().submitted_since_training == 5
    assert set(PredictedAsset.objects.values_list("status", "version")) == {(AssetStatus.SUBMITTED, 3)}
