"""Writes of continuous training: its settings, the one experiment each threshold crossing starts, and runs.

The count of images submitted since the last run lives on the feedback loop's row; the submit that makes it reach
the threshold resets it with a conditional UPDATE in its own transaction, so of many submits racing on several
workers exactly one sees the crossing and creates the experiment. An experiment freezes what it trains on (a copy
of each dataset version, made with it) and is run once by a training worker: a worker that dies mid-run leaves it
FAILED with its log (a sweep finds its stale heartbeat), never a second run started silently.
"""
import datetime as dt
import logging
import traceback

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from dashboard.errors import Conflict, FieldError, NotFound, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import DatasetVersion, Deployment, Organization
from dashboard.services.background import task_send, task_send_on_commit
from dashboard.services.datasets import dataset_version_check, dataset_version_copy
from pipelines.models import (
    ContinuousTraining, ContinuousTrainingDataset, Experiment, ExperimentDataset, ExperimentStatus, FeedbackLoop,
    Project, TrainingBackend, TrainingTrigger,
)

logger = logging.getLogger(__name__)

MAX_PARAMETERS_BYTES = 64 * 1024
FINISHED = (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED, ExperimentStatus.CANCELLED)


def project_create(*, organization: Organization, name) -> Project:
    fields = Fields()
    name = fields.text(name, "name", max_length=100, required=True)
    fields.check()
    try:
        with transaction.atomic():
            return Project.objects.create(organization=organization, name=name)
    except IntegrityError:
        raise Conflict(f"a project named {name!r} already exists", [FieldError("name", "is taken")]) from None


def _parameters(value, field: str = "experiment_parameters") -> dict:
    import json

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed.from_errors([FieldError(field, "must be a JSON object")])
    if len(json.dumps(value)) > MAX_PARAMETERS_BYTES:
        raise ValidationFailed.from_errors([FieldError(field, f"must be at most {MAX_PARAMETERS_BYTES:,} bytes of JSON")])
    return value


def continuous_training_setup(*, deployment: Deployment, project: Project, trigger=None, threshold=None,
                              experiment_parameters=None, backend=None, command=None) -> ContinuousTraining:
    """Set up (or change) the deployment's continuous training, on; what is not given keeps its value."""
    fields = Fields()
    if project.organization_id != deployment.organization_id:
        fields.refuse("project_id", "belongs to another organization")
    if trigger is not None and trigger not in TrainingTrigger.values:
        fields.refuse("trigger", f"must be one of {', '.join(TrainingTrigger.values)}, not {trigger!r}")
    threshold = fields.integer(threshold, "threshold", low=1, high=10_000_000)
    if backend is not None and backend not in TrainingBackend.values:
        fields.refuse("backend", f"must be one of {', '.join(TrainingBackend.values)}, not {backend!r}")
    command = fields.text(command, "command", max_length=2000) if command else command
    fields.check()
    changes = {"project": project, "active": True}
    if trigger is not None:
        changes["trigger"] = trigger
    if threshold is not None:
        changes["threshold"] = threshold
    if experiment_parameters is not None:
        changes["experiment_parameters"] = _parameters(experiment_parameters)
    if backend is not None:
        changes["backend"] = backend
    if command is not None:
        changes["command"] = command
    backend_after = changes.get("backend") or getattr(_ct_of(deployment, missing_ok=True), "backend", None)
    command_after = changes.get("command") if "command" in changes else getattr(
        _ct_of(deployment, missing_ok=True), "command", "")
    if backend_after == TrainingBackend.COMMAND and not command_after:
        raise ValidationFailed.from_errors([FieldError("command", "the command backend needs its command line")])
    ct, _ = ContinuousTraining.objects.update_or_create(deployment=deployment, defaults=changes)
    return ct


def _ct_of(deployment: Deployment, *, missing_ok: bool = False) -> ContinuousTraining | None:
    ct = ContinuousTraining.objects.select_related("project").filter(deployment=deployment).first()
    if ct is None and not missing_ok:
        raise ValidationFailed.from_errors([FieldError(
            "continuous_training", "is not set up for this deployment: set it up first (POST pipeline/ct)")])
    return ct


def continuous_training_toggle(*, deployment: Deployment, active) -> ContinuousTraining:
    fields = Fields()
    active = fields.boolean(active, "active")
    fields.check()
    ct = _ct_of(deployment)
    ContinuousTraining.objects.filter(pk=ct.pk).update(active=active)
    ct.active = active
    return ct


def continuous_training_attach(*, deployment: Deployment, dataset_version: DatasetVersion, alias) -> ContinuousTraining:
    fields = Fields()
    alias = fields.text(alias, "alias", max_length=50, required=True)
    fields.check()
    dataset_version_check(deployment=deployment, dataset_version=dataset_version)
    ct = _ct_of(deployment)
    ContinuousTrainingDataset.objects.update_or_create(continuous_training=ct, dataset_version=dataset_version,
                                                       defaults={"alias": alias})
    return ct


def continuous_training_detach(*, deployment: Deployment, dataset_version: DatasetVersion) -> ContinuousTraining:
    ct = _ct_of(deployment)
    deleted, _ = ContinuousTrainingDataset.objects.filter(continuous_training=ct, dataset_version=dataset_version).delete()
    if not deleted:
        raise ValidationFailed.from_errors([FieldError("dataset_version_id", "is not attached to continuous training")])
    return ct


def training_datasets(*, deployment: Deployment) -> list[tuple[str, DatasetVersion]]:
    """(alias, version) that an experiment of the deployment would train on now: the versions attached to
    continuous training, else the feedback loop's, as "train"."""
    ct = _ct_of(deployment, missing_ok=True)
    attached = [(row.alias, row.dataset_version) for row in
                ContinuousTrainingDataset.objects.filter(continuous_training=ct).select_related("dataset_version__dataset")
                ] if ct is not None else []
    if attached:
        return attached
    loop = FeedbackLoop.objects.filter(deployment=deployment).first()
    versions = loop.dataset_versions.select_related("dataset").order_by("created_at") if loop is not None else []
    return [("train", version) for version in versions]


def continuous_training_check(*, deployment: Deployment) -> Experiment | None:
    """After a submit (in its transaction): when it made the count reach the threshold, reset the count and create
    the one experiment of this crossing."""
    ct = ContinuousTraining.objects.select_related("project").filter(
        deployment=deployment, active=True, trigger=TrainingTrigger.FEEDBACK_LOOP).first()
    if ct is None:
        return None
    crossed = FeedbackLoop.objects.filter(deployment=deployment, submitted_since_training__gte=ct.threshold).update(
        submitted_since_training=0)
    if not crossed:
        return None
    return experiment_create(deployment=deployment, ct=ct, started_by="feedback loop")


def experiment_create(*, deployment: Deployment, ct: ContinuousTraining | None = None, started_by: str,
                      retry_of: Experiment | None = None) -> Experiment:
    """A PENDING experiment with frozen copies of what it trains on; its run is queued after commit."""
    from pipelines import tasks

    ct = ct or _ct_of(deployment)
    if deployment.champion_id is None:
        raise ValidationFailed.from_errors([FieldError(
            "champion", "the deployment has no champion: an experiment makes a new version of the champion's model")])
    datasets = training_datasets(deployment=deployment) if retry_of is None else [
        (row.alias, row.dataset_version) for row in retry_of.datasets.select_related("dataset_version__dataset")]
    if not datasets:
        raise ValidationFailed.from_errors([FieldError(
            "dataset_version_id", "nothing to train on: attach a dataset version to continuous training or the feedback loop")])
    now = timezone.now()
    name = f"{deployment.name}-{now:%Y%m%d-%H%M%S}"
    with transaction.atomic():
        taken = set(Experiment.objects.filter(project=ct.project, name__startswith=name).values_list("name", flat=True))
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name}-{n}"
        experiment = Experiment.objects.create(
            deployment=deployment, project=ct.project, name=unique, started_by=started_by,
            parameters=retry_of.parameters if retry_of else ct.experiment_parameters,
            backend=retry_of.backend if retry_of else ct.backend, command=retry_of.command if retry_of else ct.command,
            base_model_version_id=deployment.champion_id, retry_of=retry_of,
        )
        for alias, version in datasets:
            # A retry trains on the very copies its failed run had; a new run freezes what the versions hold now.
            frozen = version if retry_of is not None else dataset_version_copy(version=version, name=f"{version.version}@{unique}")
            ExperimentDataset.objects.create(experiment=experiment, alias=alias, dataset_version=frozen,
                                             copied_from=version if retry_of is None else None)
        # Not sent (the broker is down): the sweep queues PENDING experiments again.
        task_send_on_commit(task=tasks.experiment_run, args=[str(experiment.pk)], queue=settings.LOUPE_TRAINING_QUEUE)
    return experiment


def experiment_start(*, deployment: Deployment, user) -> Experiment:
    """An admin starts a run by hand."""
    return experiment_create(deployment=deployment, started_by=user.get_username())


def experiment_cancel(*, experiment: Experiment, user) -> Experiment:
    """Cancel a pending or running experiment; a running one stops at its next log line (the worker checks)."""
    changed = Experiment.objects.filter(pk=experiment.pk, status__in=[ExperimentStatus.PENDING, ExperimentStatus.RUNNING]
                                        ).update(status=ExperimentStatus.CANCELLED, finished_at=timezone.now(),
                                                 log=_appended(f"\nCancelled by {user.get_username()}.\n"))
    if not changed:
        raise Conflict(f"experiment {experiment.name} has finished; it cannot be cancelled")
    experiment.refresh_from_db()
    return experiment


def experiment_retry(*, experiment: Experiment, user) -> Experiment:
    """A new run of a failed or cancelled experiment, on the same frozen data and parameters."""
    if experiment.status not in (ExperimentStatus.FAILED, ExperimentStatus.CANCELLED):
        raise Conflict(f"experiment {experiment.name} is {experiment.status}: only a failed or cancelled one is retried")
    return experiment_create(deployment=experiment.deployment, started_by=user.get_username(), retry_of=experiment)


def _appended(text: str):
    # Concatenated in the database: a worker and a sweep may write the same log at once.
    return Concat(F("log"), Value(text))


def experiment_claim(*, experiment_id, worker: str) -> Experiment | None:
    """PENDING -> RUNNING for one worker; None when it is not pending (run, cancelled, or claimed already)."""
    claimed = Experiment.objects.filter(pk=experiment_id, status=ExperimentStatus.PENDING).update(
        status=ExperimentStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now(),
        log=_appended(f"Started on {worker}.\n"))
    return Experiment.objects.select_related("deployment", "project").get(pk=experiment_id) if claimed else None


def experiment_log(*, experiment: Experiment, text: str) -> bool:
    """Append to the log (and beat the heart); False once the experiment was cancelled, so the run stops."""
    return bool(Experiment.objects.filter(pk=experiment.pk, status=ExperimentStatus.RUNNING).update(
        log=_appended(text), heartbeat_at=timezone.now()))


def experiment_finish(*, experiment: Experiment, status: str, text: str = "", **fields) -> bool:
    """RUNNING -> a final status; False when it was cancelled meanwhile (what it made is then dropped)."""
    return bool(Experiment.objects.filter(pk=experiment.pk, status=ExperimentStatus.RUNNING).update(
        status=status, finished_at=timezone.now(), log=_appended(text), **fields))


def experiment_failed(*, experiment: Experiment, error: BaseException) -> None:
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    experiment_finish(experiment=experiment, status=ExperimentStatus.FAILED, text=f"\nFailed: {detail}\n")


def experiments_sweep(*, stale_after: dt.timedelta | None = None, pending_after: dt.timedelta | None = None) -> dict:
    """Beat: RUNNING experiments whose heartbeat stopped (their worker died) end FAILED with a line in their log;
    PENDING ones left unqueued (a broker outage) are queued again. Returns what it did."""
    from pipelines import tasks

    now = timezone.now()
    stale_after = stale_after or dt.timedelta(seconds=settings.LOUPE_EXPERIMENT_HEARTBEAT_SECONDS * 4)
    pending_after = pending_after or dt.timedelta(minutes=5)
    died = Experiment.objects.filter(status=ExperimentStatus.RUNNING, heartbeat_at__lt=now - stale_after).update(
        status=ExperimentStatus.FAILED, finished_at=now,
        log=_appended("\nFailed: its worker stopped answering (it died or was killed); retry it to run it again.\n"))
    waiting = list(Experiment.objects.filter(status=ExperimentStatus.PENDING, created_at__lt=now - pending_after)
                   .values_list("pk", flat=True)[:100])
    for experiment_id in waiting:
        task_send(task=tasks.experiment_run, args=[str(experiment_id)], queue=settings.LOUPE_TRAINING_QUEUE)
    return {"failed": died, "queued": len(waiting)}


def experiment_for(*, deployment: Deployment, experiment_id) -> Experiment:
    experiment = Experiment.objects.filter(deployment=deployment, pk=experiment_id).first()
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found")
    return experiment
