"""Continuous training and deployment settings, the one experiment per threshold crossing, and an experiment's life."""
import datetime as dt

import pytest
from django.utils import timezone

from dashboard.models import PredictedAsset
from pipelines.models import (
    ContinuousTraining, Experiment, ExperimentDataset, ExperimentStatus, FeedbackLoop, Project,
)
from pipelines.services.feedback_loop import feedback_loop_setup, feedback_loop_submit
from pipelines.services.training import (
    continuous_training_setup, experiment_cancel, experiment_claim, experiment_log, experiment_retry,
    experiments_sweep, project_create,
)
from tests.unit.pipelines.test_feedback_loop import DET, api, assets, dataset_versions, detection, field_of  # noqa: F401


@pytest.fixture
def project(organization):
    return project_create(organization=organization, name="faces")


@pytest.fixture
def loop(detection, dataset_versions):
    return feedback_loop_setup(deployment=detection, dataset_version=dataset_versions[0])


def submit(deployment, assets):
    return feedback_loop_submit(deployment=deployment, assets=PredictedAsset.objects.filter(pk__in=[a.pk for a in assets]))


def test_projects_through_the_api(api, api_tokens, organization, outsider_token):
    made = api("POST", "/api/projects", api_tokens["admin"], {"name": "faces", "organization_id": str(organization.id)})
    assert made.status_code == 201 and made.json()["name"] == "faces"
    again = api("POST", "/api/projects", api_tokens["admin"], {"name": "faces", "organization_id": str(organization.id)})
    assert again.status_code == 409 and field_of(again) == ["name"]
    assert api("POST", "/api/projects", api_tokens["labeler"],
               {"name": "x", "organization_id": str(organization.id)}).status_code == 403
    found = api("GET", "/api/projects?name=faces", api_tokens["labeler"]).json()["items"]
    assert [item["id"] for item in found] == [made.json()["id"]]
    assert api("GET", "/api/projects?name=faces", outsider_token).json()["items"] == []


def test_setup_toggle_and_datasets_through_the_api(api, api_tokens, detection, project, loop, dataset_versions):
    base = f"/api/deployment/{detection.id}"
    shown = api("GET", base + "/pipeline/ct", api_tokens["labeler"]).json()
    # Not set up: it would train on the feedback loop's versions, as "train".
    assert shown["set_up"] is False and [d["alias"] for d in shown["datasets"]] == ["train"]
    bad = api("POST", base + "/pipeline/ct", api_tokens["admin"],
              {"project_id": str(project.id), "trigger": "SOMETIMES", "threshold": 0})
    assert bad.status_code == 400 and sorted(field_of(bad)) == ["threshold", "trigger"]
    done = api("POST", base + "/pipeline/ct", api_tokens["admin"],
               {"project_id": str(project.id), "trigger": "FEEDBACK_LOOP", "threshold": 3,
                "experiment_parameters": {"epochs": 5}})
    assert done.status_code == 200
    assert (done.json()["active"], done.json()["threshold"], done.json()["experiment_parameters"]) == (True, 3, {"epochs": 5})
    attached = api("POST", base + "/ct/datasets", api_tokens["admin"],
                   {"dataset_version_id": str(dataset_versions[1].id), "alias": "test"})
    assert [(d["alias"], d["id"]) for d in attached.json()["datasets"]] == [("test", str(dataset_versions[1].id))]
    assert api("PUT", base + "/pipeline/ct", api_tokens["admin"], {"active": False}).json()["active"] is False
    assert api("PUT", base + "/pipeline/ct", api_tokens["labeler"], {"active": True}).status_code == 403
    gone = api("DELETE", base + "/ct/datasets", api_tokens["admin"], {"dataset_version_id": str(dataset_versions[1].id)})
    assert [d["alias"] for d in gone.json()["datasets"]] == ["train"]
    again = api("DELETE", base + "/ct/datasets", api_tokens["admin"], {"dataset_version_id": str(dataset_versions[1].id)})
    assert again.status_code == 400 and field_of(again) == ["dataset_version_id"]


def test_continuous_deployment_settings(api, api_tokens, detection):
    base = f"/api/deployment/{detection.id}/pipeline/cd"
    assert api("PUT", base, api_tokens["admin"], {"active": True}).status_code == 400  # not set up
    bad = api("POST", base, api_tokens["admin"], {"policy": "DEPLOY_SOMEWHERE"})
    assert bad.status_code == 400 and field_of(bad) == ["policy"]
    done = api("POST", base, api_tokens["admin"], {"policy": "DEPLOY_SHADOW", "gate_metric": "map"})
    assert done.json() == {"deployment_id": str(detection.id), "set_up": True, "policy": "DEPLOY_SHADOW",
                           "active": True, "gate_metric": "map"}
    assert api("PUT", base, api_tokens["admin"], {"active": False}).json()["active"] is False


def test_the_submit_that_reaches_the_threshold_starts_one_experiment_on_frozen_copies(
        detection, project, loop, assets, dataset_versions):
    continuous_training_setup(deployment=detection, project=project, trigger="FEEDBACK_LOOP", threshold=3,
                              experiment_parameters={"epochs": 2})
    submit(detection, assets(2))
    assert not Experiment.objects.exists() and FeedbackLoop.objects.get().submitted_since_training == 2
    submit(detection, assets(2))
    experiment = Experiment.objects.get()
    assert FeedbackLoop.objects.get().submitted_since_training == 0  # the count starts again
    assert experiment.status == ExperimentStatus.PENDING and experiment.started_by == "feedback loop"
    assert experiment.name.startswith(f"{detection.name}-") and experiment.parameters == {"epochs": 2}
    assert experiment.base_model_version_id == detection.champion_id
    frozen = ExperimentDataset.objects.get(experiment=experiment)
    assert frozen.alias == "train" and frozen.copied_from == dataset_versions[0]
    assert frozen.dataset_version.assets.count() == 4
    submit(detection, assets(1))  # later submissions do not change what it trains on
    assert dataset_versions[0].assets.count() == 5 and frozen.dataset_version.assets.count() == 4
    assert Experiment.objects.count() == 1


def test_an_inactive_or_manual_training_never_starts_one(detection, project, loop, assets):
    ct = continuous_training_setup(deployment=detection, project=project, trigger="NONE", threshold=1)
    submit(detection, assets(2))
    ContinuousTraining.objects.filter(pk=ct.pk).update(trigger="FEEDBACK_LOOP", active=False)
    submit(detection, assets(2))
    assert not Experiment.objects.exists()


def test_one_run_per_experiment_a_dead_worker_fails_it_and_a_retry_reuses_its_data(
        detection, project, loop, assets, users):
    continuous_training_setup(deployment=detection, project=project, trigger="FEEDBACK_LOOP", threshold=1)
    submit(detection, assets(1))
    experiment = Experiment.objects.get()
    assert experiment_claim(experiment_id=experiment.pk, worker="w1") is not None
    assert experiment_claim(experiment_id=experiment.pk, worker="w2") is None  # a second delivery does nothing
    assert experiment_log(experiment=experiment, text="epoch 1\n")
    Experiment.objects.filter(pk=experiment.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    assert experiments_sweep()["failed"] == 1
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FAILED and "epoch 1" in experiment.log and "stopped" in experiment.log
    assert not experiment_log(experiment=experiment, text="late line\n")  # its worker, if alive, stops
    retry = experiment_retry(experiment=experiment, user=users["admin"])
    assert retry.retry_of == experiment and retry.status == ExperimentStatus.PENDING
    assert [row.dataset_version_id for row in retry.datasets.all()] == [
        row.dataset_version_id for row in experiment.datasets.all()]
    cancelled = experiment_cancel(experiment=retry, user=users["admin"])
    assert cancelled.status == ExperimentStatus.CANCELLED
    assert experiment_claim(experiment_id=retry.pk, worker="w3") is None


def test_experiments_through_the_api(api, api_tokens, detection, project, loop, assets):
    base = f"/api/deployment/{detection.id}"
    continuous_training_setup(deployment=detection, project=project, trigger="NONE", threshold=10)
    submit(detection, assets(1))
    assert api("POST", base + "/experiments", api_tokens["labeler"]).status_code == 403
    started = api("POST", base + "/experiments", api_tokens["admin"])
    assert started.status_code == 201 and started.json()["started_by"] == "admin"
    listed = api("GET", base + "/experiments", api_tokens["labeler"]).json()["items"]
    assert [item["id"] for item in listed] == [started.json()["id"]]
    one = api("GET", f"{base}/experiments/{started.json()['id']}", api_tokens["labeler"]).json()
    assert one["status"] == "PENDING" and one["log"] == "" and one["datasets"][0]["alias"] == "train"
    assert api("POST", f"{base}/experiments/{started.json()['id']}/explode", api_tokens["admin"]).status_code == 404
    cancelled = api("POST", f"{base}/experiments/{started.json()['id']}/cancel", api_tokens["admin"])
    assert cancelled.json()["status"] == "CANCELLED"
    assert api("POST", f"{base}/experiments/{started.json()['id']}/cancel", api_tokens["admin"]).status_code == 409
    assert api("POST", f"{base}/experiments/{started.json()['id']}/reject", api_tokens["admin"]).status_code == 409
    retried = api("POST", f"{base}/experiments/{started.json()['id']}/retry", api_tokens["admin"])
    assert retried.status_code == 201 and retried.json()["retry_of"] == started.json()["id"]


def test_no_champion_no_experiment(detection, project, loop, assets):
    from dashboard.errors import ValidationFailed
    from pipelines.services.training import experiment_create

    continuous_training_setup(deployment=detection, project=project, trigger="NONE")
    detection.__class__.objects.filter(pk=detection.pk).update(champion=None)
    detection.refresh_from_db()
    with pytest.raises(ValidationFailed) as refused:
        experiment_create(deployment=detection, started_by="admin")
    assert refused.value.errors[0].field == "champion"
    assert Project.objects.count() == 1
