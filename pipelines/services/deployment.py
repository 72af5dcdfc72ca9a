"""Writes of continuous deployment: its policy and gate, and what becomes of the model version an experiment made."""
from django.db import transaction

from dashboard.errors import Conflict, FieldError, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import Deployment
from pipelines.models import ContinuousDeployment, DeploymentPolicy, Experiment, ExperimentStatus, GateMetric

CHAMPION, SHADOW, PENDING, REJECTED, GATE_FAILED, NOTHING = "champion", "shadow", "pending", "rejected", "gate", "none"


def continuous_deployment_setup(*, deployment: Deployment, policy, gate_metric=None) -> ContinuousDeployment:
    fields = Fields()
    if policy not in DeploymentPolicy.values:
        fields.refuse("policy", f"must be one of {', '.join(DeploymentPolicy.values)}, not {policy!r}")
    if gate_metric is not None and gate_metric not in GateMetric.values:
        fields.refuse("gate_metric", f"must be one of {', '.join(v for v in GateMetric.values if v)} or empty, "
                                     f"not {gate_metric!r}")
    fields.check()
    changes = {"policy": policy, "active": True}
    if gate_metric is not None:
        changes["gate_metric"] = gate_metric
    cd, _ = ContinuousDeployment.objects.update_or_create(deployment=deployment, defaults=changes)
    return cd


def continuous_deployment_toggle(*, deployment: Deployment, active) -> ContinuousDeployment:
    fields = Fields()
    active = fields.boolean(active, "active")
    fields.check()
    cd = ContinuousDeployment.objects.filter(deployment=deployment).first()
    if cd is None:
        raise ValidationFailed.from_errors([FieldError(
            "continuous_deployment", "is not set up for this deployment: set it up first (POST pipeline/cd)")])
    ContinuousDeployment.objects.filter(pk=cd.pk).update(active=active)
    cd.active = active
    return cd


def _decided(experiment: Experiment, action: str, note: str) -> None:
    Experiment.objects.filter(pk=experiment.pk).update(deployment_action=action, deployment_note=note[:500])
    experiment.deployment_action, experiment.deployment_note = action, note[:500]


def experiment_promote(*, experiment: Experiment, role: str, user) -> Experiment:
    """An admin makes a pending (or gated) version the champion or the shadow."""
    from serving.services.registry import deployment_set_model

    if role not in (CHAMPION, SHADOW):
        raise ValidationFailed.from_errors([FieldError("role", f"must be champion or shadow, not {role!r}")])
    if experiment.status != ExperimentStatus.SUCCEEDED or experiment.model_version_id is None:
        raise Conflict(f"experiment {experiment.name} made no model version to promote")
    with transaction.atomic():
        deployment_set_model(deployment=experiment.deployment, model_version_id=experiment.model_version_id,
                             shadow=role == SHADOW, changed_by=user)
        _decided(experiment, role, f"promoted as {role} by {user.get_username()}")
    return experiment


def experiment_reject(*, experiment: Experiment, user) -> Experiment:
    if experiment.deployment_action not in (PENDING, GATE_FAILED):
        raise Conflict(f"experiment {experiment.name} has no version waiting for a decision")
    _decided(experiment, REJECTED, f"rejected by {user.get_username()}; the version stays in the registry")
    return experiment


def gate_check(*, metric: str, inference_type: str, evaluation: dict) -> tuple[bool, str, dict]:
    """Does the new version beat the champion on `metric`, on the same held-out reviewed images?

    mAP and accuracy need the paired bootstrap's 95 % interval of (new - champion) above zero; AP@.50 and F1 (which
    the bootstrap does not resample) need the new one strictly higher. Returns (passed, why, figures).
    """
    from monitoring.quality import quality_compare, quality_evaluate

    base, new = evaluation["images_base"], evaluation["images_new"]
    common = dict(inference_type=inference_type, label_ids=evaluation["label_ids"],
                  min_threshold=evaluation["min_threshold"])
    if metric in (GateMetric.MAP, GateMetric.ACCURACY):
        compared = quality_compare(images_champion=base, images_shadow=new, seed=0, **common)
        interval = compared["interval"]
        passed = interval is not None and interval[0] > 0
        low_high = "no interval (no reviewed image to compare on)" if interval is None else (
            f"95 % interval of the difference [{interval[0]:+.3f}, {interval[1]:+.3f}]")
        return passed, f"{compared['metric']} {compared['champion']} → {compared['shadow']}, {low_high}", compared
    before, after = quality_evaluate(images=base, **common), quality_evaluate(images=new, **common)
    if metric == GateMetric.AP50:
        old, now = before["coco_stats"][1], after["coco_stats"][1]
    else:
        old, now = before["overall"]["f1"], after["overall"]["f1"]
    passed = now is not None and (old is None or now > old)
    return passed, f"{metric} {old} → {now}", {"champion": old, "new": now}


def experiment_deploy(*, experiment: Experiment, evaluation: dict | None) -> Experiment:
    """Apply the deployment's CD policy to the version the experiment made (after its gate, when one is set)."""
    from serving.services.registry import deployment_set_model

    cd = ContinuousDeployment.objects.filter(deployment=experiment.deployment_id, active=True).first()
    if cd is None:
        _decided(experiment, NOTHING, "continuous deployment is off: the version waits in the registry")
        return experiment
    if cd.gate_metric:
        if not evaluation:
            _decided(experiment, GATE_FAILED, "the gate needs held-out reviewed images, and the run had none")
            return experiment
        passed, why, figures = gate_check(metric=cd.gate_metric, inference_type=experiment.deployment.type,
                                          evaluation=evaluation)
        Experiment.objects.filter(pk=experiment.pk).update(metrics={**experiment.metrics, "gate": {
            "metric": cd.gate_metric, "passed": passed, "why": why}})
        if not passed:
            _decided(experiment, GATE_FAILED, f"not promoted: it does not beat the champion ({why})")
            return experiment
    if cd.policy == DeploymentPolicy.DEPLOY_MANUAL:
        _decided(experiment, PENDING, "waiting for an admin to promote or reject it")
        return experiment
    role = SHADOW if cd.policy == DeploymentPolicy.DEPLOY_SHADOW else CHAMPION
    with transaction.atomic():
        deployment_set_model(deployment=experiment.deployment, model_version_id=experiment.model_version_id,
                             shadow=role == SHADOW)
        _decided(experiment, role, f"deployed as {role} by continuous deployment ({cd.get_policy_display().lower()})")
    return experiment
