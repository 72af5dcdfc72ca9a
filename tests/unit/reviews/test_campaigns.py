"""Review campaigns: making them, sharing tasks, the pool's leases, reviews making tasks done, skips, rework, progress."""
import datetime as dt
import io
import json

import pytest
from django.utils import timezone

from dashboard.errors import Conflict, ValidationFailed
from dashboard.models import PredictedAsset
from monitoring.services.ingest import prediction_ingest
from reviews.models import CampaignStatus, ReviewTask, TaskStatus
from reviews.selectors import campaign_progress, instructions_html
from reviews.services.campaigns import (
    campaign_add_assets, campaign_assign, campaign_close, campaign_create, campaign_next_task, campaigns_auto_add,
    task_accept, task_rework, task_skip,
)
from reviews.services.review import bulk_accept, review_submit
from tests.fixtures import PASSWORD

DET = "OBJECT_DETECTION"
BOX = {"type": "rectangle", "label_id": 1, "x": 2, "y": 3, "w": 10, "h": 8}


@pytest.fixture
def detection(deployments):
    return deployments[DET]


@pytest.fixture
def frames(detection, monitor_payload, jpeg_bytes):
    """Six frames, the first three from camera-2."""
    return [prediction_ingest(deployment=detection, payload=monitor_payload(
        DET, image=jpeg_bytes(seed=40 + i), source="camera-2" if i < 3 else "camera-1")).asset for i in range(6)]


@pytest.fixture
def second_labeler(django_user_model, organization, fast_password_hasher):
    from dashboard.models import Membership, Role

    user = django_user_model.objects.create_user("labeler2", password=PASSWORD)
    Membership.objects.create(organization=organization, user=user, role=Role.LABELER)
    return user


def review(asset, user):
    return review_submit(asset_id=asset.pk, reviewer=user, shapes=[BOX],
                         expected_version=PredictedAsset.objects.get(pk=asset.pk).version)


def test_a_campaign_over_a_query_has_a_task_per_matching_asset(detection, frames, users):
    campaign = campaign_create(deployment=detection, user=users["ml_lead"], description="camera 2",
                               instructions_text="# Boxes\nTight **boxes**.<script>alert(1)</script>",
                               query="source:camera-2", end_date="2030-01-01")
    assert sorted(campaign.tasks.values_list("asset_id", flat=True)) == sorted(a.pk for a in frames[:3])
    assert campaign.end_date == dt.date(2030, 1, 1) and campaign.status == CampaignStatus.OPEN
    html = instructions_html(campaign)
    assert "<strong>boxes</strong>" in html and "<script" not in html
    assert campaign_add_assets(campaign=campaign, query="") == 3  # the others join once
    assert campaign_add_assets(campaign=campaign, query="") == 0
    with pytest.raises(ValidationFailed) as refused:
        campaign_create(deployment=detection, user=users["ml_lead"], query="source:", end_date="soon")
    assert {error.field for error in refused.value.errors} == {"end_date"}


def test_round_robin_by_hand_and_by_query(detection, frames, users, second_labeler):
    campaign = campaign_create(deployment=detection, user=users["ml_lead"], query="")
    assert campaign_assign(campaign=campaign, assignees=["labeler", "labeler2"]) == 6
    counts = {name: campaign.tasks.filter(assignee__username=name).count() for name in ("labeler", "labeler2")}
    assert counts == {"labeler": 3, "labeler2": 3}
    other = campaign_create(deployment=detection, user=users["ml_lead"], query="")
    assert campaign_assign(campaign=other, assignees=["labeler2"], query="source:camera-2") == 3
    assert set(other.tasks.filter(assignee__username="labeler2").values_list("asset__source", flat=True)) == {"camera-2"}
    with pytest.raises(ValidationFailed) as refused:
        campaign_assign(campaign=other, assignees=["nobody"])
    assert refused.value.errors[0].field == "assignees"


def test_the_pool_hands_each_task_once_and_an_expired_lease_returns_it(detection, frames, users, second_labeler):
    campaign = campaign_create(deployment=detection, user=users["ml_lead"], query="")
    first = campaign_next_task(campaign=campaign, user=users["labeler"])
    assert campaign_next_task(campaign=campaign, user=users["labeler"]) == first  # still theirs
    other = campaign_next_task(campaign=campaign, user=second_labeler)
    assert other != first and other.assignee == second_labeler
    ReviewTask.objects.filter(pk=first.pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    taken_back = campaign_next_task(campaign=campaign, user=second_labeler)
    assert taken_back == other  # their own comes first
    review(other.asset, second_labeler)
    assert campaign_next_task(campaign=campaign, user=second_labeler) == first  # the expired lease went back


def test_a_review_makes_the_task_done_and_the_campaign_can_close_itself(detection, frames, users):
    campaign = campaign_create(deployment=detection, user=users["ml_lead"], query="source:camera-2",
                               auto_close_on_completion=True)
    review(frames[0], users["labeler"])
    bulk_accept(deployment=detection, assets=PredictedAsset.objects.filter(pk=frames[1].pk),
                reviewer=users["labeler"], min_score=0.0)
    task = campaign.tasks.get(asset=frames[2])
    task_skip(task=task, user=users["labeler"], reason="too blurry")
    progress = campaign_progress(campaign=campaign)
    assert progress["counts"] == {"TO_DO": 0, "TO_REWORK": 0, "DONE": 2, "SKIPPED": 1}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED


def test_skips_need_a_reason_rework_sends_it_back_to_its_reviewer(detection, frames, users):
    campaign = campaign_create(deployment=detection, user=users["ml_lead"], query="source:camera-2")
    task = campaign.tasks.get(asset=frames[0])
    with pytest.raises(ValidationFailed):
        task_skip(task=task, user=users["labeler"], reason="")
    with pytest.raises(Conflict):
        task_rework(task=task, user=users["ml_lead"], comment="fix")  # not done yet
    review(frames[0], users["labeler"])
    task.refresh_from_db()
    task = task_rework(task=task, user=users["ml_lead"], comment="the left box is loose")
    assert (task.status, task.assignee, task.rework_comment) == (TaskStatus.TO_REWORK, users["labeler"],
                                                                 "the left box is loose")
    assert campaign_next_task(campaign=campaign, user=users["labeler"]) == task  # rework first
    review(frames[0], users["labeler"])
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    assert task_accept(task=task, user=users["ml_lead"]).accepted_by == users["ml_lead"]
    campaign_close(campaign=campaign)
    with pytest.raises(Conflict):
        task_rework(task=task, user=users["ml_lead"], comment="again")


def test_progress_pace_projection_and_overdue(detection, frames, users):
    campaign = campaign_create(deployment=detection, user=users["ml_lead"], query="", end_date="2020-01-01")
    review(frames[0], users["labeler"])
    review(frames[1], users["labeler"])
    progress = campaign_progress(campaign=campaign)
    assert progress["remaining"] == 4 and progress["pace_per_day"] == round(2 / 7, 2)
    assert progress["overdue"] is True and progress["projected_finish"] is not None
    assert sum(progress["done_per_day"].values()) == 2
    assert [p["username"] for p in progress["people"]] == [None]


def test_auto_add_new_assets_takes_new_matching_frames_from_the_ingest_api(
        detection, users, api_tokens, api_login, monitor_post, monitor_payload, jpeg_bytes):
    campaign = campaign_create(deployment=detection, user=users["ml_lead"], query="source:camera-9",
                               auto_add_new_assets=True)
    jwt = api_login(api_tokens["ml_lead"], detection)
    for seed, source in ((1, "camera-9"), (2, "camera-1"), (3, "camera-9")):
        response = monitor_post(detection, monitor_payload(DET, image=jpeg_bytes(seed=seed), source=source), jwt)
        assert response.status_code == 201
    assert campaigns_auto_add() == 2
    assert set(campaign.tasks.values_list("asset__source", flat=True)) == {"camera-9"}
    assert campaigns_auto_add() == 0


def _api(client, method, path, token, body=None, **extra):
    kwargs = {"headers": {"Authorization": f"Bearer {token}"}, **extra}
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    return getattr(client, method)(path, **kwargs)


def test_the_api(client, detection, frames, api_tokens, users, outsider_token):
    made = _api(client, "post", f"/api/deployment/{detection.id}/campaigns", api_tokens["ml_lead"],
                {"description": "cams", "instructions_text": "be tight", "q": "source:camera-2",
                 "auto_close_on_completion": True})
    assert made.status_code == 201 and made.json()["progress"]["total"] == 3
    campaign_id = made.json()["id"]
    assert _api(client, "post", f"/api/deployment/{detection.id}/campaigns", api_tokens["labeler"], {}).status_code == 403
    assert _api(client, "get", f"/api/campaigns/review/{campaign_id}", outsider_token).status_code == 404
    assert _api(client, "post", f"/api/campaigns/review/{campaign_id}/assets", api_tokens["ml_lead"],
                {"q": ""}).json()["added"] == 3
    assigned = _api(client, "post", f"/api/campaigns/review/{campaign_id}/assign", api_tokens["ml_lead"],
                    {"assignees": ["labeler"], "q": "source:camera-1"})
    assert assigned.json()["assigned"] == 3
    mine = _api(client, "get", f"/api/campaigns/review/{campaign_id}/tasks", api_tokens["labeler"]).json()["items"]
    assert len(mine) == 3 and {t["assignee"] for t in mine} == {"labeler"}
    every = _api(client, "get", f"/api/campaigns/review/{campaign_id}/tasks?status=TO_DO", api_tokens["ml_lead"]).json()
    assert len(every["items"]) == 6
    task = _api(client, "post", f"/api/campaigns/review/{campaign_id}/next", api_tokens["admin"], {}).json()["task"]
    assert task["assignee"] == "admin" and task["status"] == "TO_DO"
    skipped = _api(client, "post", f"/api/campaigns/tasks/{task['id']}/skip", api_tokens["admin"], {"reason": "dark"})
    assert skipped.json()["status"] == "SKIPPED"
    bad = _api(client, "post", f"/api/campaigns/tasks/{task['id']}/skip", api_tokens["admin"], {"reason": "again"})
    assert bad.status_code == 409
    closed = _api(client, "post", f"/api/campaigns/review/{campaign_id}/close", api_tokens["ml_lead"], {})
    assert closed.json()["status"] == "CLOSED"


def test_a_campaign_is_shared_round_robin_as_it_is_made_or_not_at_all(client, detection, frames, api_tokens,
                                                                       second_labeler):
    url = f"/api/deployment/{detection.id}/campaigns"
    made = _api(client, "post", url, api_tokens["ml_lead"], {"q": "", "assignees": ["labeler", "labeler2"]})
    assert made.status_code == 201
    tasks = _api(client, "get", f"/api/campaigns/review/{made.json()['id']}/tasks", api_tokens["ml_lead"]).json()
    # In the campaign's order, one each in turn.
    assert [t["assignee"] for t in tasks["items"]] == ["labeler", "labeler2"] * 3
    people = {p["username"]: p["TO_DO"] for p in made.json()["progress"]["people"]}
    assert people == {"labeler": 3, "labeler2": 3}
    before = ReviewTask.objects.count()
    for assignees, rule in ((["labeler", "nobody"], "not members of the organization: nobody"),
                            ("labeler", "must be a list of usernames")):
        refused = _api(client, "post", url, api_tokens["ml_lead"], {"q": "", "assignees": assignees})
        assert refused.status_code == 400
        assert refused.json()["errors"] == [{"field": "assignees", "message": rule}]
    assert ReviewTask.objects.count() == before and detection.campaigns.count() == 1


def test_an_instructions_file_is_checked_by_its_content(client, detection, api_tokens, png_bytes):
    url = f"/api/deployment/{detection.id}/campaigns"
    headers = {"Authorization": f"Bearer {api_tokens['ml_lead']}"}
    pdf = io.BytesIO(b"%PDF-1.4\n%fake but shaped like one\n")
    pdf.name = "guide.pdf"
    made = client.post(url, {"description": "with file", "instructions_file": pdf}, headers=headers)
    assert made.status_code == 201 and made.json()["instructions_file_url"].endswith("/instructions")
    fake = io.BytesIO(b"MZ\x90\x00 not a document")
    fake.name = "guide.pdf"
    refused = client.post(url, {"description": "bad", "instructions_file": fake}, headers=headers)
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "instructions_file"
    image = io.BytesIO(png_bytes())
    image.name = "guide.png"
    assert client.post(url, {"description": "img", "instructions_file": image}, headers=headers).status_code == 201


def test_the_new_campaign_form_shares_it_among_the_labelers_ticked(client, detection, frames, users, second_labeler):
    client.force_login(users["ml_lead"])
    page = client.get(f"/deployments/{detection.id}/campaigns/")
    assert b'name="assignee"' in page.content and b">labeler2</option>" in page.content
    answer = client.post(f"/deployments/{detection.id}/campaigns/",
                         {"description": "night", "q": "source:camera-2", "assignee": ["labeler2"]})
    assert answer.status_code == 302
    campaign = detection.campaigns.get()
    assert list(campaign.tasks.values_list("assignee__username", flat=True)) == ["labeler2"] * 3
