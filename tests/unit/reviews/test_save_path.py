"""The tool's save stays quick without weakening its checks: one query reads the asset, its deployment and the
member's role; a review of an asset in no campaign costs one statement for the campaigns; the version check and
the deployment's fence hold."""
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.services.ingest import prediction_ingest
from reviews.models import ReviewTask, TaskStatus
from reviews.services.campaigns import campaign_create

DET = "OBJECT_DETECTION"
BOX = {"type": "rectangle", "label_id": 1, "x": 2, "y": 3, "w": 10, "h": 8}


@pytest.fixture
def asset(deployments, monitor_payload):
    return prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset


def save(client, asset, version, shapes=(BOX,)):
    return client.post(f"/deployments/{asset.deployment_id}/assets/{asset.pk}/review/save",
                       data=json.dumps({"shapes": list(shapes), "expected_version": version}),
                       content_type="application/json")


def test_a_save_reads_little(client, users, asset):
    client.force_login(users["labeler"])
    save(client, asset, 1)  # the first save creates the stats rows; count a later one
    with CaptureQueriesContext(connection) as queries:
        assert save(client, asset, 2).status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    reads_before_the_write = [sql for sql in statements[:statements.index(next(
        sql for sql in statements if sql.startswith("UPDATE") and "dashboard_predictedasset" in sql))]
        if sql.startswith("SELECT") and not sql.startswith(('SELECT "django_session"', 'SELECT "auth_user"'))]
    # The asset with its deployment and the role, then the deployment's label map for validation.
    assert len(reads_before_the_write) == 2, reads_before_the_write
    task_statements = [sql for sql in statements if "reviews_reviewtask" in sql]
    assert len(task_statements) == 1 and task_statements[0].startswith("UPDATE"), task_statements


def test_the_conflict_check_and_the_fences_hold(client, users, asset, outsider, deployments):
    client.force_login(users["labeler"])
    assert save(client, asset, 1).json()["version"] == 2
    stale = save(client, asset, 1, shapes=())
    assert stale.status_code == 409 and stale.json()["version"] == 2 and stale.json()["reviewed_by"] == "labeler"
    elsewhere = client.post(f"/deployments/{deployments['CLASSIFICATION'].id}/assets/{asset.pk}/review/save",
                            data=json.dumps({"shapes": [BOX]}), content_type="application/json")
    assert elsewhere.status_code == 404
    client.force_login(outsider)
    assert save(client, asset, 2).status_code == 404


def test_a_review_still_finishes_the_assets_campaign_task(client, users, asset, deployments):
    campaign = campaign_create(deployment=deployments[DET], user=users["ml_lead"], description="", instructions_text="",
                               instructions_file=None, end_date=None, auto_add_new_assets=False,
                               auto_close_on_completion=True, query="", asset_ids=[asset.pk])
    client.force_login(users["labeler"])
    assert save(client, asset, 1).status_code == 200
    task = ReviewTask.objects.get(campaign=campaign, asset=asset)
    assert task.status == TaskStatus.DONE and task.done_by == users["labeler"]
    campaign.refresh_from_db()
    assert campaign.status == "CLOSED", "its last task done, the campaign that asked to close itself did"
