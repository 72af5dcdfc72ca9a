"""The counts the database keeps for campaign progress (ReviewTaskCount, kept by triggers) always equal a count of
the tasks themselves, whatever wrote them: made with assignees, assigned in bulk, the pool, reviews, skips, rework,
a deleted asset, a deleted user, a deleted campaign. Runs on SQLite (row triggers) and PostgreSQL (statement
triggers)."""
import random
from collections import Counter

import pytest

from dashboard.models import Membership, PredictedAsset, Role
from monitoring.services.ingest import prediction_ingest
from reviews.models import ReviewCampaign, ReviewTask, ReviewTaskCount, TaskStatus
from reviews.selectors import campaign_progress
from reviews.services.campaigns import (
    campaign_add_assets, campaign_assign, campaign_create, campaign_next_task, task_rework, task_skip,
    tasks_done_by_review,
)


def counted(campaign) -> Counter:
    return Counter({(holder or None, status): n for holder, status, n in
                    ReviewTaskCount.objects.filter(campaign=campaign, n__gt=0).values_list("holder", "status", "n")})


def recounted(campaign) -> Counter:
    return Counter((task.assignee_id, task.status) for task in ReviewTask.objects.filter(campaign=campaign))


@pytest.mark.django_db(transaction=True)
def test_the_kept_counts_equal_the_tasks_after_every_kind_of_write(
        organization, deployments, monitor_payload, jpeg_bytes, users, django_user_model):
    deployment = deployments["OBJECT_DETECTION"]
    for seed in range(24):
        prediction_ingest(deployment=deployment, payload=monitor_payload("OBJECT_DETECTION", image=jpeg_bytes(seed=seed)))
    people = []
    for index in range(3):
        user = django_user_model.objects.create_user(f"counter{index}")
        Membership.objects.create(organization=organization, user=user, role=Role.LABELER)
        people.append(user)
    assets = list(PredictedAsset.objects.filter(deployment=deployment).order_by("pk"))
    campaign = campaign_create(deployment=deployment, user=users["ml_lead"], asset_ids=[a.pk for a in assets[:12]],
                               assignees=[p.username for p in people[:2]])
    other = campaign_create(deployment=deployment, user=users["ml_lead"], query="")
    assert counted(campaign) == recounted(campaign) and sum(counted(campaign).values()) == 12
    assert counted(campaign)[(people[0].pk, TaskStatus.TO_DO)] == 6  # shared round robin as they were made

    rng = random.Random(7)
    steps = [
        lambda: campaign_add_assets(campaign=campaign, asset_ids=[a.pk for a in assets[12:18]]),
        lambda: campaign_assign(campaign=campaign, assignees=[people[2].username]),
        lambda: campaign_next_task(campaign=other, user=rng.choice(people)),
        lambda: tasks_done_by_review(asset_ids=[rng.choice(assets).pk], user=rng.choice(people)),
        lambda: tasks_done_by_review(asset_ids=[a.pk for a in rng.sample(assets, 5)], user=people[0]),
    ]
    for step in steps * 3:
        step()
        for each in (campaign, other):
            assert counted(each) == recounted(each)
    done = ReviewTask.objects.filter(campaign=campaign, status=TaskStatus.DONE).select_related("campaign").first()
    task_rework(task=done, user=users["ml_lead"], comment="the left box is a dog")
    open_task = ReviewTask.objects.filter(campaign=other, status=TaskStatus.TO_DO).select_related("campaign").first()
    task_skip(task=open_task, user=people[1], reason="blurred")
    assert counted(campaign) == recounted(campaign) and counted(other) == recounted(other)

    # Cascades too: an asset deleted, a user deleted (their tasks go back to no one), a campaign deleted.
    assets[0].delete()
    people[1].delete()
    for each in (campaign, other):
        assert counted(each) == recounted(each)
    progress = campaign_progress(campaign=campaign)
    assert progress["total"] == ReviewTask.objects.filter(campaign=campaign).count()
    assert progress["counts"] == {status: ReviewTask.objects.filter(campaign=campaign, status=status).count()
                                  for status in TaskStatus.values}
    ReviewCampaign.objects.filter(pk=other.pk).delete()
    assert not ReviewTaskCount.objects.filter(campaign_id=other.pk).exists()
