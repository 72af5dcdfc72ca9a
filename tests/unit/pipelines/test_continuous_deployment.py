"""Continuous deployment: each policy applied to the version an experiment made, the gate on held-out images with a
paired bootstrap interval, the pending card's promote / reject, and restoring the version it replaced."""
import pytest

from dashboard.models import ModelVersion
from pipelines.models import ContinuousDeployment, Experiment, ExperimentStatus
from pipelines.services.deployment import (
    continuous_deployment_setup, experiment_deploy, experiment_promote, experiment_reject, experiment_restore,
    gate_check,
)
from pipelines.services.training import project_create
from serving.models import DeploymentModelChange
from tests.unit.pipelines.test_feedback_loop import DET, api, detection, field_of  # noqa: F401

TRUTH = {"type": "rectangle", "label_id": 1, "x": 10, "y": 10, "w": 30, "h": 30}


def box(score, x=10, label_id=1):
    return {"type": "rectangle", "label_id": label_id, "score": score, "x": x, "y": 10, "w": 30, "h": 30}


def images(count, predicted):
    """`count` held-out images of one reviewed box each, predicted as `predicted(index)` says."""
    return [{"id": str(index), "width": 100, "height": 100, "truth": [TRUTH], "predicted": predicted(index)}
            for index in range(count)]


# The base ranks a false box above the true one and misses a third of the faces; the new one fixes both.
BASE = images(30, lambda i: [box(0.9, x=60)] + ([box(0.6)] if i % 3 else []))
BETTER = images(30, lambda i: [box(0.1, x=60)] + ([box(0.95)] if i % 3 else [box(0.5)]))
EVALUATION = {"label_ids": [1, 2], "min_threshold": 0.3}


@pytest.mark.parametrize("metric", ["map", "ap50", "f1"])
def test_the_gate_passes_a_clearly_better_version_and_refuses_an_equal_or_worse_one(metric):
    passed, why, figures = gate_check(metric=metric, inference_type=DET, rounds=300,
                                      evaluation={**EVALUATION, "images_base": BASE, "images_new": BETTER})
    assert passed and figures["new"] > figures["champion"] and figures["interval"][0] > 0
    assert "30 held-out images" in why and "95 % interval" in why
    same, _, figures = gate_check(metric=metric, inference_type=DET, rounds=300,
                                  evaluation={**EVALUATION, "images_base": BASE, "images_new": BASE})
    assert not same and figures["interval"] == [0.0, 0.0]
    worse, _, _ = gate_check(metric=metric, inference_type=DET, rounds=300,
                             evaluation={**EVALUATION, "images_base": BETTER, "images_new": BASE})
    assert not worse


def test_a_small_gain_on_few_images_is_not_enough():
    # One image of four better: the new version is ahead, but the interval reaches zero.
    base = images(4, lambda i: [box(0.6)] if i else [])
    new = images(4, lambda i: [box(0.6)])
    passed, why, figures = gate_check(metric="f1", inference_type=DET, rounds=500,
                                      evaluation={**EVALUATION, "images_base": base, "images_new": new})
    assert figures["new"] > figures["champion"] and not passed and figures["interval"][0] <= 0


def test_the_gate_on_accuracy_for_classification():
    truth = [{"type": "classification", "label_id": 1}]
    base = [{"id": str(i), "width": 8, "height": 8, "truth": truth,
             "predicted": [{"type": "classification", "label_id": 2, "score": 0.9}]} for i in range(20)]
    new = [{**image, "predicted": [{"type": "classification", "label_id": 1, "score": 0.9}]} for image in base]
    passed, _, figures = gate_check(metric="accuracy", inference_type="CLASSIFICATION", rounds=200,
                                    evaluation={**EVALUATION, "images_base": base, "images_new": new})
    assert passed and (figures["champion"], figures["new"]) == (0.0, 1.0)


def test_the_gate_metric_must_suit_the_deployment(api, api_tokens, detection):
    refused = api("POST", f"/api/deployment/{detection.id}/pipeline/cd", api_tokens["admin"],
                  {"policy": "DEPLOY_CHAMPION", "gate_metric": "accuracy"})
    assert refused.status_code == 400 and field_of(refused) == ["gate_metric"]
    assert "map, ap50, f1" in refused.json()["errors"][0]["message"]


@pytest.fixture
def made(detection, organization):
    """A SUCCEEDED experiment of the detection deployment and the version it made (a new version of the
    champion's model), as the run leaves them before continuous deployment."""
    champion = detection.champion
    version = ModelVersion.objects.create(model=champion.model, version=3, name="trained", labels=champion.labels,
                                          source="experiment")
    experiment = Experiment.objects.create(
        deployment=detection, project=project_create(organization=organization, name="p"), name="detection-1",
        status=ExperimentStatus.SUCCEEDED, started_by="feedback loop", backend="reference",
        base_model_version=champion, model_version=version, metrics={"trainer": "reference"})
    return experiment


def test_deploy_champion_makes_it_the_champion_and_restore_brings_the_old_one_back(detection, made, users):
    old = detection.champion_id
    continuous_deployment_setup(deployment=detection, policy="DEPLOY_CHAMPION")
    experiment_deploy(experiment=made, evaluation=None)
    detection.refresh_from_db()
    assert detection.champion_id == made.model_version_id and made.deployment_action == "champion"
    assert ModelVersion.objects.filter(pk=old).exists()  # the old one stays in the registry
    experiment_restore(experiment=made, user=users["admin"])
    detection.refresh_from_db()
    assert detection.champion_id == old and Experiment.objects.get(pk=made.pk).deployment_action == "restored"
    changes = list(DeploymentModelChange.objects.filter(deployment=detection, role="champion").order_by("changed_at")
                   .values_list("current_id", flat=True))
    assert changes[-2:] == [made.model_version_id, old]


def test_deploy_shadow_makes_it_the_shadow(detection, made):
    champion = detection.champion_id
    continuous_deployment_setup(deployment=detection, policy="DEPLOY_SHADOW")
    experiment_deploy(experiment=made, evaluation=None)
    detection.refresh_from_db()
    assert (detection.champion_id, detection.shadow_id) == (champion, made.model_version_id)
    assert made.deployment_action == "shadow"


def test_manual_waits_on_the_pending_card_then_an_admin_promotes_or_rejects(api, api_tokens, detection, made):
    continuous_deployment_setup(deployment=detection, policy="DEPLOY_MANUAL")
    experiment_deploy(experiment=made, evaluation=None)
    detection.refresh_from_db()
    assert made.deployment_action == "pending" and detection.champion_id != made.model_version_id
    path = f"/api/deployment/{detection.id}/experiments/{made.id}"
    assert api("POST", path + "/promote", api_tokens["ml_lead"], {"role": "champion"}).status_code == 403
    wrong = api("POST", path + "/promote", api_tokens["admin"], {"role": "king"})
    assert wrong.status_code == 400 and field_of(wrong) == ["role"]
    promoted = api("POST", path + "/promote", api_tokens["admin"], {"role": "shadow"})
    assert promoted.status_code == 200 and promoted.json()["deployment_action"] == "shadow"
    detection.refresh_from_db()
    assert detection.shadow_id == made.model_version_id


def test_a_rejected_version_stays_in_the_registry(detection, made, users):
    continuous_deployment_setup(deployment=detection, policy="DEPLOY_MANUAL")
    experiment_deploy(experiment=made, evaluation=None)
    experiment_reject(experiment=made, user=users["admin"])
    assert Experiment.objects.get(pk=made.pk).deployment_action == "rejected"
    assert ModelVersion.objects.filter(pk=made.model_version_id).exists()


def test_a_version_failing_the_gate_is_not_deployed_and_says_why(detection, made, users):
    champion = detection.champion_id
    continuous_deployment_setup(deployment=detection, policy="DEPLOY_CHAMPION", gate_metric="f1")
    experiment_deploy(experiment=made, evaluation={**EVALUATION, "images_base": BETTER, "images_new": BASE})
    detection.refresh_from_db()
    stored = Experiment.objects.get(pk=made.pk)
    assert detection.champion_id == champion and stored.deployment_action == "gate"
    assert "does not beat the champion" in stored.deployment_note and "95 % interval" in stored.deployment_note
    assert stored.metrics["gate"]["passed"] is False and stored.metrics["trainer"] == "reference"
    assert ModelVersion.objects.filter(pk=made.model_version_id).exists()
    # An admin may still decide otherwise, from the same card.
    experiment_promote(experiment=stored, role="champion", user=users["admin"])
    detection.refresh_from_db()
    assert detection.champion_id == made.model_version_id


def test_a_version_passing_the_gate_is_deployed_by_the_policy(detection, made):
    continuous_deployment_setup(deployment=detection, policy="DEPLOY_CHAMPION", gate_metric="map")
    experiment_deploy(experiment=made, evaluation={**EVALUATION, "images_base": BASE, "images_new": BETTER})
    detection.refresh_from_db()
    assert detection.champion_id == made.model_version_id
    assert Experiment.objects.get(pk=made.pk).metrics["gate"]["passed"] is True


def test_with_cd_off_the_version_only_waits_in_the_registry(detection, made):
    continuous_deployment_setup(deployment=detection, policy="DEPLOY_CHAMPION")
    ContinuousDeployment.objects.update(active=False)
    champion = detection.champion_id
    experiment_deploy(experiment=made, evaluation=None)
    detection.refresh_from_db()
    assert detection.champion_id == champion and made.deployment_action == "none"
