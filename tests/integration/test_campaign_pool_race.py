"""Ten labelers asking the pool for their next task at once, each in its own connection, never get the same one."""
import threading

import pytest
from django.db import connection

from dashboard.models import Membership, Role
from monitoring.services.ingest import prediction_ingest
from reviews.services.campaigns import campaign_create, campaign_next_task
from tests.fixtures import PASSWORD

LABELERS = 10


@pytest.mark.django_db(transaction=True)
def test_ten_labelers_racing_for_the_pool_get_ten_different_tasks(
        organization, deployments, monitor_payload, jpeg_bytes, users, django_user_model):
    deployment = deployments["OBJECT_DETECTION"]
    for seed in range(LABELERS * 2):
        prediction_ingest(deployment=deployment, payload=monitor_payload("OBJECT_DETECTION", image=jpeg_bytes(seed=seed)))
    campaign = campaign_create(deployment=deployment, user=users["ml_lead"], query="")
    people = []
    for index in range(LABELERS):
        user = django_user_model.objects.create_user(f"racer{index}", password=PASSWORD)
        Membership.objects.create(organization=organization, user=user, role=Role.LABELER)
        people.append(user)
    barrier, taken, errors = threading.Barrier(LABELERS), [], []

    def ask(user):
        try:
            barrier.wait()
            task = campaign_next_task(campaign=campaign, user=user)
            taken.append((user.pk, task.pk if task else None))
        except Exception as error:  # noqa: BLE001 - the assertion names it
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(user,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(taken) == LABELERS
    task_ids = [task_id for _, task_id in taken]
    assert None not in task_ids and len(set(task_ids)) == LABELERS
    holders = dict(campaign.tasks.filter(pk__in=task_ids).values_list("pk", "assignee_id"))
    assert all(holders[task_id] == user_id for user_id, task_id in taken)
