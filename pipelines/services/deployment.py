"""Writes of continuous deployment: its policy and gate, and what becomes of the model version an experiment made."""
import numpy as np
from django.conf import settings
from django.db import transaction

from dashboard.errors import Conflict, FieldError, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import Deployment
from pipelines.models import ContinuousDeployment, DeploymentPolicy, Experiment, ExperimentStatus, GateMetric

CHAMPION, SHADOW, PENDING, REJECTED, GATE_FAILED, NOTHING = "champion", "shadow", "pending", "rejected", "gate", "none"
RESTORED = "restored"


def continuous_deployment_setup(*, deployment: Deployment, policy, gate_metric=None) -> ContinuousDeployment:
    fields = Fields()
    if policy not in DeploymentPolicy.values:
        fields.refuse("policy", f"must be one of {', '.join(DeploymentPolicy.values)}, not {policy!r}")
    allowed = GATE_METRICS_BY_TYPE.get(deployment.type, ())
    if gate_metric is not None and gate_metric not in GateMetric.values:
        fields.refuse("gate_metric", f"must be one of {', '.join(v for v in GateMetric.values if v)} or empty, "
                                     f"not {gate_metric!r}")
    elif gate_metric and gate_metric not in allowed:
        fields.refuse("gate_metric", f"a {deployment.type} deployment is measured on {', '.join(allowed)}, "
                                     f"not {gate_metric}")
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


def experiment_restore(*, experiment: Experiment, user) -> Experiment:
    """Undo what continuous deployment (or an admin) did with the experiment's version: the champion it replaced
    serves again, or the version leaves the shadow. Both versions stay in the registry."""
    from serving.services.registry import deployment_set_model

    deployment = experiment.deployment
    deployment.refresh_from_db(fields=["champion", "shadow"])
    if experiment.deployment_action == CHAMPION and deployment.champion_id == experiment.model_version_id \
            and experiment.base_model_version_id:
        with transaction.atomic():
            deployment_set_model(deployment=deployment, model_version_id=experiment.base_model_version_id,
                                 shadow=False, changed_by=user)
            _decided(experiment, RESTORED, f"{user.get_username()} restored the champion it replaced")
        return experiment
    if experiment.deployment_action == SHADOW and deployment.shadow_id == experiment.model_version_id:
        with transaction.atomic():
            deployment_set_model(deployment=deployment, model_version_id=None, shadow=True, changed_by=user)
            _decided(experiment, RESTORED, f"{user.get_username()} took it off the shadow")
        return experiment
    raise Conflict(f"the version of experiment {experiment.name} does not serve as it was deployed any more: "
                   "change the deployment's models on its models page")


# Which gate metrics a deployment type can be measured on.
GATE_METRICS_BY_TYPE = {
    "CLASSIFICATION": (GateMetric.ACCURACY,),
    "OBJECT_DETECTION": (GateMetric.MAP, GateMetric.AP50, GateMetric.F1),
    "SEGMENTATION": (GateMetric.MAP, GateMetric.AP50, GateMetric.F1),
}


def _resample_counts(*, rounds: int, size: int, seed: int) -> np.ndarray:
    """(rounds, size): how often each image is drawn in each bootstrap resample (the same draws for both models)."""
    if size == 0:
        return np.zeros((rounds, 0))
    draws = np.random.default_rng(seed).integers(0, size, size=(rounds, size))
    return np.stack([np.bincount(row, minlength=size) for row in draws]).astype(float)


def _interval(differences: np.ndarray) -> list[float] | None:
    differences = differences[~np.isnan(differences)]
    if not len(differences):
        return None
    low, high = np.percentile(differences, [2.5, 97.5])
    return [float(low), float(high)]


def _ap50_rounds(images: list[dict], common: dict, counts: np.ndarray) -> tuple[np.ndarray, float | None]:
    """AP@.50 of each resample: monitoring's COCO matches kept at the first IoU threshold (0.50) only."""
    from monitoring.quality import CategoryMatches, DetectionMatches, quality_evaluate

    iou_type = "segm" if common["inference_type"] == "SEGMENTATION" else "bbox"
    matches = DetectionMatches.from_images(images=images, label_ids=common["label_ids"], iou_type=iou_type)
    at_50 = DetectionMatches([CategoryMatches(c.image_index, c.true_positive[:1], c.false_positive[:1],
                                              c.truths_per_image) for c in matches.categories],
                             matches.image_count, matches.recall_thresholds)
    value = quality_evaluate(images=images, **common)["coco_stats"][1]
    return at_50.mean_average_precision(counts), None if value == -1 else value


def _f1_rounds(images: list[dict], common: dict, counts: np.ndarray) -> tuple[np.ndarray, float | None]:
    """F1 at the min_threshold of each resample, from each image's true positives, predictions and truths (as
    monitoring.quality counts them, image by image)."""
    from monitoring.quality import quality_evaluate

    per_image = np.array([[overall["true_positives"], overall["predictions"], overall["truths"]]
                          for overall in (quality_evaluate(images=[image], **common)["overall"] for image in images)],
                         dtype=float).reshape(len(images), 3)
    true_positives, predictions, truths = (counts @ per_image).T
    with np.errstate(invalid="ignore", divide="ignore"):
        rounds = np.where(predictions + truths > 0, 2 * true_positives / (predictions + truths), np.nan)
    total_tp, total_predictions, total_truths = per_image.sum(axis=0)
    value = 2 * total_tp / (total_predictions + total_truths) if total_predictions + total_truths else None
    return rounds, value


def gate_check(*, metric: str, inference_type: str, evaluation: dict, rounds: int | None = None,
               seed: int = 0) -> tuple[bool, str, dict]:
    """Does the new version beat the champion on `metric`, on the same held-out reviewed images?

    Whatever the metric, it passes only when the paired bootstrap's 95 % percentile interval of (new - champion)
    lies above zero: images resampled with replacement, the same draws for both versions (monitoring.quality's
    quality_compare for mAP and accuracy, the same resampling of its COCO matches at IoU .50 for AP50, of each
    image's counts for F1). Returns (passed, why in words, the figures).
    """
    from monitoring.quality import quality_compare

    rounds = rounds or settings.LOUPE_QUALITY_BOOTSTRAP_ROUNDS
    base, new = evaluation["images_base"], evaluation["images_new"]
    if [image["id"] for image in base] != [image["id"] for image in new]:
        raise ValueError("the gate compares both versions on the same images, in the same order")
    common = dict(inference_type=inference_type, label_ids=evaluation["label_ids"],
                  min_threshold=evaluation["min_threshold"])
    if metric in (GateMetric.MAP, GateMetric.ACCURACY):
        compared = quality_compare(images_champion=base, images_shadow=new, seed=seed, rounds=rounds, **common)
        before, after, interval = compared["champion"], compared["shadow"], compared["interval"]
    else:
        counts = _resample_counts(rounds=rounds, size=len(base), seed=seed)
        measure = _ap50_rounds if metric == GateMetric.AP50 else _f1_rounds
        (base_rounds, before), (new_rounds, after) = (measure(images, common, counts) for images in (base, new))
        interval = _interval(new_rounds - base_rounds)
    passed = interval is not None and interval[0] > 0
    shown = lambda value: "n/a" if value is None else f"{value:.3f}"  # noqa: E731
    why = (f"{GateMetric(metric).label} {shown(before)} → {shown(after)} on {len(base)} held-out images, "
           + ("no interval (nothing to measure on them)" if interval is None else
              f"95 % interval of the difference [{interval[0]:+.3f}, {interval[1]:+.3f}]"))
    return passed, why, {"metric": metric, "champion": before, "new": after, "interval": interval,
                         "images": len(base), "rounds": rounds, "passed": passed}


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
        champion_now = Deployment.objects.filter(pk=experiment.deployment_id).values_list("champion_id", flat=True).first()
        if champion_now != experiment.base_model_version_id:
            why += "; measured against the champion the run started from, since replaced"
        experiment.metrics = {**experiment.metrics, "gate": {**figures, "why": why}}
        Experiment.objects.filter(pk=experiment.pk).update(metrics=experiment.metrics)
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
