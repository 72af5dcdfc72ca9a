"""The whole loop on a live server, a real Redis and a real Celery worker consuming the celery, serving and training
queues, driven through the Python client: the demo's face frames predicted (and so monitored) by the Haar champion,
reviewed, submitted until the threshold, one experiment of the reference trainer, its model version deployed as the
champion (or the shadow, by the policy), and the next predict answering with it (or recording the shadow's
prediction beside the champion's)."""
import time

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker
from django.db import connections

from dashboard.models import PredictedAsset, Prediction
from dashboard.services.datasets import dataset_create, dataset_version_create
from pipelines.models import Experiment, ExperimentStatus
from tests.unit.pipelines.demo_reviews import faces_deployment, simulated_review

pytestmark = pytest.mark.django_db(transaction=True)

FRAMES = 32


@pytest.fixture
def pipeline_worker(celery_app_live, transactional_db):
    """A real Celery worker (solo pool, in a thread) on the default, serving and training queues."""

    def close_own_connections(**_):
        for conn in connections.all(initialized_only=True):
            conn.close()

    signals.task_postrun.connect(close_own_connections, weak=False)
    try:
        with start_worker(celery_app_live, pool="solo", perform_ping_check=False, loglevel="WARNING",
                          shutdown_timeout=60, queues=["celery", "serving", "training"]) as worker:
            yield worker
    finally:
        signals.task_postrun.disconnect(close_own_connections)


def _wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout} s")


@pytest.mark.parametrize("policy", ["DEPLOY_CHAMPION", "DEPLOY_SHADOW"])
def test_reviews_past_the_threshold_train_one_version_that_the_next_predict_answers_with(
        policy, pipeline_worker, live_server, organization, api_tokens, users, settings):
    from demo import demo_images
    from loupe_sdk import Client

    settings.LOUPE_PUBLIC_URL = live_server.url
    deployment = faces_deployment(organization, count=0, name="faces-loop")
    base_version = deployment.champion_id
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="faces-loop-reviewed"),
                                     version="v1", type=deployment.type)
    frames = list(demo_images(FRAMES, mix="faces"))
    with Client(api_token=api_tokens["admin"], organization_id=organization.id, host=live_server.url) as client:
        faces = client.get_deployment("faces-loop")
        faces.setup_feedback_loop(version.id)
        project = client.create_project("faces-loop")
        faces.setup_continuous_training(project, trigger="FEEDBACK_LOOP", threshold=FRAMES)
        faces.setup_continuous_deployment(policy)

        answers = [faces.predict_bytes(frame.filename, frame.content, metadata=frame.metadata) for frame in frames]
        assert {answer["model_version_id"] for answer in answers} == {str(base_version)}
        assets = []
        for answer in answers:
            stored = PredictedAsset.objects.select_related("data").get(pk=answer["predicted_asset_id"])
            review = simulated_review(stored, keep_eyes=False)
            reviewed = faces.find_predicted_asset(id=answer["predicted_asset_id"]).add_review(
                rectangles=[{key: shape[key] for key in ("x", "y", "w", "h", "label_id")} for shape in review])
            assert reviewed.status == "REVIEWED"
            assets.append(answer["predicted_asset_id"])

        assert faces.submit_to_feedback_loop(assets[:FRAMES // 2])["submitted"] == FRAMES // 2
        time.sleep(1)
        assert not Experiment.objects.exists()  # under the threshold: nothing trains
        assert faces.submit_to_feedback_loop(assets[FRAMES // 2:])["submitted"] == FRAMES // 2

        experiment = _wait_for(lambda: Experiment.objects.filter(
            deployment=deployment, status__in=[ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED]).first(), 240)
        assert experiment.status == ExperimentStatus.SUCCEEDED, experiment.log
        assert Experiment.objects.count() == 1 and experiment.started_by == "feedback loop"
        assert experiment.name.startswith("faces-loop-")
        deployment.refresh_from_db()
        if policy == "DEPLOY_SHADOW":
            # The new version shadows the champion: answers stay the champion's, and the shadow's prediction of
            # each monitored frame is recorded beside it, on the worker.
            assert experiment.deployment_action == "shadow", experiment.deployment_note
            assert deployment.champion_id == base_version and deployment.shadow_id == experiment.model_version_id
            again = faces.predict_bytes(frames[0].filename, frames[0].content, metadata=frames[0].metadata)
            assert again["model_version_id"] == str(base_version) and again["shadow"] == "queued"
            shadow = _wait_for(lambda: Prediction.objects.filter(
                asset_id=again["predicted_asset_id"], is_shadow=True).first(), 60)
            assert shadow.model_version_id == experiment.model_version_id
            return
        assert experiment.deployment_action == "champion", experiment.deployment_note
        assert deployment.champion_id == experiment.model_version_id != base_version
        print(f"\nwhole loop, {FRAMES} frames, held out {experiment.metrics['held_out_images']}: base "
              f"{experiment.metrics['base']}, new {experiment.metrics['new']}")

        # The next prediction is the new champion's, served by the worker as any version is.
        again = faces.predict_bytes(frames[0].filename, frames[0].content, monitor=False)
        assert again["model_version_id"] == str(experiment.model_version_id)
        assert again["model_version"] == str(experiment.model_version)
