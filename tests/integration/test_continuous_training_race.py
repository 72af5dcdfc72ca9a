"""Twenty submits racing across the threshold, each in its own thread and database connection, start one experiment."""
import threading

import pytest
from django.db import connection

from dashboard.models import AssetStatus, PredictedAsset
from dashboard.services.datasets import dataset_create, dataset_version_create
from monitoring.services.ingest import prediction_ingest
from pipelines.models import Experiment, FeedbackLoop
from pipelines.services.feedback_loop import feedback_loop_setup, feedback_loop_submit
from pipelines.services.training import continuous_training_setup, project_create

DET = "OBJECT_DETECTION"
SUBMITS = 20


@pytest.mark.django_db(transaction=True)
def test_twenty_racing_submits_crossing_the_threshold_start_exactly_one_experiment(
        organization, deployments, monitor_payload, jpeg_bytes, users):
    deployment = deployments[DET]
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="race"), version="v1", type=DET)
    feedback_loop_setup(deployment=deployment, dataset_version=version)
    continuous_training_setup(deployment=deployment, project=project_create(organization=organization, name="race"),
                              trigger="FEEDBACK_LOOP", threshold=SUBMITS)
    ids = []
    for seed in range(SUBMITS):
        asset = prediction_ingest(deployment=deployment, payload=monitor_payload(DET, image=jpeg_bytes(seed=seed))).asset
        PredictedAsset.objects.filter(pk=asset.pk).update(status=AssetStatus.REVIEWED, reviewed_shapes=[], version=2)
        ids.append(asset.pk)
    barrier, errors = threading.Barrier(SUBMITS), []

    def submit(asset_id):
        try:
            barrier.wait()
            feedback_loop_submit(deployment=deployment, assets=PredictedAsset.objects.filter(pk=asset_id))
        except Exception as error:  # noqa: BLE001 - the assertion below names it
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(asset_id,)) for asset_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert Experiment.objects.count() == 1
    assert FeedbackLoop.objects.get(deployment=deployment).submitted_since_training == 0
    assert Experiment.objects.get().datasets.get().dataset_version.assets.count() == SUBMITS
