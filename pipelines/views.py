"""The data pipeline's pages: a deployment's pipeline (feedback loop, training data, continuous training with its
count towards the threshold, continuous deployment and its gate, versions waiting for an admin), its experiments and
an experiment's page with its live log. Admins change things through forms; labelers and ML leads read."""
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from dashboard.errors import ApiError, FieldError, NotFound, ValidationFailed
from dashboard.models import DatasetVersion, Role
from dashboard.selectors.datasets import dataset_version_in, versions_with_counts
from dashboard.selectors.access import deployment_for_member, role_require
from monitoring.selectors import training_data_of
from monitoring.services.training_data import training_data_disable, training_data_set
from pipelines.models import (
    DeploymentPolicy, ExperimentDataset, GateMetric, Project, TrainingBackend, TrainingTrigger,
)
from pipelines.selectors import (
    continuous_deployment_of, continuous_training_of, experiment_of, experiments_of, experiments_waiting,
    feedback_loop_of, feedback_loop_versions,
)
from pipelines.services.deployment import (
    CHAMPION, GATE_FAILED, GATE_METRICS_BY_TYPE, PENDING, SHADOW, continuous_deployment_setup,
    continuous_deployment_toggle, experiment_promote, experiment_reject, experiment_restore,
)
from pipelines.services.feedback_loop import feedback_loop_attach, feedback_loop_detach, feedback_loop_setup, feedback_loop_toggle
from pipelines.services.training import (
    FINISHED, continuous_training_attach, continuous_training_detach, continuous_training_setup,
    continuous_training_toggle, experiment_cancel, experiment_retry, experiment_start, project_create,
    training_datasets,
)

# The figures an experiment's page puts side by side, base and new, in this order.
COMPARED = (("map", "mAP"), ("ap50", "AP@.50"), ("f1", "F1"), ("precision", "Precision"), ("recall", "Recall"),
            ("accuracy", "Accuracy"))


def _refusal(error: ApiError) -> list[str]:
    """An ApiError in words for the page: each field at fault and its rule, else the message."""
    return [f"{e.field}: {e.message}" for e in error.errors] or [error.message]


@login_required
@require_http_methods(["GET", "POST"])
def feedback_loop_settings(request, deployment_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    refused = []
    if request.method == "POST":
        role_require(held=membership.role, role=Role.ADMIN)
        try:
            with transaction.atomic():  # a refused setup leaves nothing behind, not even the new project
                done, anchor = _pipeline_action(deployment, request.POST, request.user)
            messages.success(request, done)
            return redirect(f"{request.path}#{anchor}")
        except ApiError as error:
            refused = _refusal(error)
    attached = feedback_loop_versions(deployment=deployment)
    candidates = versions_with_counts(
        DatasetVersion.objects.filter(dataset__organization_id=deployment.organization_id, type=deployment.type)
        # An experiment's frozen copies are what it trained on, not somewhere to send new images.
        .exclude(pk__in=ExperimentDataset.objects.filter(copied_from__isnull=False).values("dataset_version"))
    ).order_by("dataset__name", "created_at")
    loop = feedback_loop_of(deployment=deployment)
    ct, cd = continuous_training_of(deployment=deployment), continuous_deployment_of(deployment=deployment)
    count = loop.submitted_since_training if loop else 0
    context = {
        "deployment": deployment,
        "is_admin": membership.allows(Role.ADMIN),
        "loop": loop,
        "attached": attached,
        "candidates": [v for v in candidates if v.id not in {a.id for a in attached}],
        "all_versions": list(candidates),
        "training": training_data_of(deployment=deployment),
        "ct": ct,
        "cd": cd,
        "ct_datasets": training_datasets(deployment=deployment),
        "ct_attached": bool(ct and ct.datasets.exists()),
        "count": count,
        "progress": min(100, round(100 * count / ct.threshold)) if ct and ct.threshold else 0,
        "projects": Project.objects.filter(organization_id=deployment.organization_id),
        "triggers": TrainingTrigger.choices,
        "backends": TrainingBackend.choices,
        "policies": DeploymentPolicy.choices,
        "gate_metrics": [(value, label) for value, label in GateMetric.choices
                         if not value or value in GATE_METRICS_BY_TYPE.get(deployment.type, ())],
        "waiting": experiments_waiting(deployment=deployment),
        "experiments": experiments_of(deployment=deployment, limit=5),
        "refused": refused,
        "posted": request.POST if refused else {},
        "parameters_text": json.dumps(ct.experiment_parameters, indent=2) if ct else "{}",
    }
    return render(request, "pipelines/feedback_loop.html", context, status=400 if refused else 200)


def _version_posted(deployment, form):
    if not form.get("dataset_version_id"):
        return None
    try:
        return dataset_version_in(organization_id=deployment.organization_id, version_id=form["dataset_version_id"])
    except (NotFound, ValueError, ValidationError):  # a malformed id is as unknown as a missing one
        raise NotFound("that dataset version was not found") from None


def _parameters_posted(text: str) -> dict:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ValidationFailed.from_errors([FieldError("experiment_parameters", f"is not valid JSON ({error.msg}, "
                                                                                f"line {error.lineno})")]) from None
    if not isinstance(value, dict):
        raise ValidationFailed.from_errors([FieldError("experiment_parameters", "must be a JSON object, {...}")])
    return value


def _project_posted(deployment, form) -> Project:
    if form.get("project_name", "").strip():
        return project_create(organization=deployment.organization, name=form["project_name"])
    project_id = form.get("project_id")
    project = (Project.objects.filter(organization_id=deployment.organization_id, pk=project_id).first()
               if _is_uuid(project_id) else None)
    if project is None:
        raise ValidationFailed.from_errors([FieldError("project_id", "choose a project, or name a new one")])
    return project


def _whole_posted(text):
    """A form's whole number as an int; anything else as typed, for the service to refuse by name."""
    text = (text or "").strip()
    if not text:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _is_uuid(value) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def _pipeline_action(deployment, form, user) -> tuple[str, str]:
    """Carry out the form's action; returns what happened, in words for the page, and the section to show."""
    action = form.get("action")
    version = _version_posted(deployment, form)
    name = f"{version.dataset.name} {version.version}" if version is not None else ""
    if action == "setup":
        feedback_loop_setup(deployment=deployment, dataset_version=version)
        return "The feedback loop is set up and on.", "loop"
    if action in ("activate", "deactivate"):
        feedback_loop_toggle(deployment=deployment, active=action == "activate")
        return ("The feedback loop is on." if action == "activate"
                else "The feedback loop is off: nothing can be submitted."), "loop"
    if action == "attach" and version is not None:
        feedback_loop_attach(deployment=deployment, dataset_version=version)
        return f"Attached {name}: submitted predictions are added to it.", "loop"
    if action == "detach" and version is not None:
        feedback_loop_detach(deployment=deployment, dataset_version=version)
        return f"Detached {name}: what it holds stays in it.", "loop"
    if action == "training" and version is not None:
        training_data_set(deployment=deployment, dataset_version=version)
        return f"{name} is the training data now: a worker computes its reference, then rescores the predictions.", "training-data"
    if action == "training-disable":
        training_data_disable(deployment=deployment)
        return "Training data disabled: scores go back to the deployment's own history (rescored in the background).", "training-data"
    if action == "ct-setup":
        parameters = _parameters_posted(form.get("experiment_parameters", ""))
        ct = continuous_training_setup(
            deployment=deployment, project=_project_posted(deployment, form), trigger=form.get("trigger"),
            threshold=_whole_posted(form.get("threshold")), experiment_parameters=parameters,
            backend=form.get("backend"), command=form.get("command", "") if form.get("backend") == TrainingBackend.COMMAND else "")
        when = (f"a run starts each time {ct.threshold} more images are submitted"
                if ct.trigger == TrainingTrigger.FEEDBACK_LOOP else "runs start only by hand")
        return f"Continuous training is set up and on: {when}.", "ct"
    if action in ("ct-activate", "ct-deactivate"):
        continuous_training_toggle(deployment=deployment, active=action == "ct-activate")
        return f"Continuous training is {'on' if action == 'ct-activate' else 'off'}.", "ct"
    if action == "ct-attach" and version is not None:
        continuous_training_attach(deployment=deployment, dataset_version=version, alias=form.get("alias"))
        return f"Experiments train on {name} as {form.get('alias')}.", "ct"
    if action == "ct-detach" and version is not None:
        continuous_training_detach(deployment=deployment, dataset_version=version)
        return f"Detached {name} from continuous training.", "ct"
    if action == "experiment-start":
        experiment = experiment_start(deployment=deployment, user=user)
        return f"Experiment {experiment.name} is queued.", "experiments"
    if action == "cd-setup":
        cd = continuous_deployment_setup(deployment=deployment, policy=form.get("policy"),
                                         gate_metric=form.get("gate_metric", ""))
        gate = f", gated on {cd.get_gate_metric_display()}" if cd.gate_metric else ""
        return f"Continuous deployment is on: {cd.get_policy_display().lower()}{gate}.", "cd"
    if action in ("cd-activate", "cd-deactivate"):
        continuous_deployment_toggle(deployment=deployment, active=action == "cd-activate")
        return f"Continuous deployment is {'on' if action == 'cd-activate' else 'off'}.", "cd"
    raise ValidationFailed.from_errors([FieldError("action", "choose an action (and a dataset version where it needs one)")])


@login_required
@require_http_methods(["GET"])
def experiment_list(request, deployment_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    return render(request, "pipelines/experiment_list.html", {
        "deployment": deployment, "is_admin": membership.allows(Role.ADMIN),
        "experiments": experiments_of(deployment=deployment), "ct": continuous_training_of(deployment=deployment),
    })


def _compared(metrics: dict) -> list[dict]:
    base, new = metrics.get("base") or {}, metrics.get("new") or {}
    rows = []
    for key, label in COMPARED:
        if key in base or key in new:
            before, after = base.get(key), new.get(key)
            difference = after - before if before is not None and after is not None else None
            rows.append({"key": key, "label": label, "base": before, "new": after, "difference": difference})
    return rows


@login_required
@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def experiment_detail(request, deployment_id, experiment_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    experiment = experiment_of(deployment=deployment, experiment_id=experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found")
    if request.method == "POST":
        role_require(held=membership.role, role=Role.ADMIN)
        try:
            done, target = _experiment_action(experiment, request.POST, request.user)
            messages.success(request, done)
            return redirect("experiment-detail", deployment.id, target.id)
        except ApiError as error:
            for line in _refusal(error):
                messages.error(request, line)
            return redirect("experiment-detail", deployment.id, experiment.id)
    context = {
        "deployment": deployment, "experiment": experiment, "is_admin": membership.allows(Role.ADMIN),
        "finished": experiment.status in FINISHED, "compared": _compared(experiment.metrics or {}),
        "gate": (experiment.metrics or {}).get("gate"),
        "datasets": experiment.datasets.select_related("dataset_version__dataset", "copied_from__dataset"),
        "parameters": json.dumps(experiment.parameters, indent=2),
        "waiting": experiment.deployment_action in (PENDING, GATE_FAILED),
        "restorable": experiment.deployment_action in (CHAMPION, SHADOW),
    }
    if request.htmx and request.GET.get("part") == "live":
        return render(request, "pipelines/experiment.html#live", context)
    return render(request, "pipelines/experiment.html", context)


def _experiment_action(experiment, form, user):
    action = form.get("action")
    if action == "cancel":
        experiment_cancel(experiment=experiment, user=user)
        return f"Experiment {experiment.name} is cancelled.", experiment
    if action == "retry":
        retry = experiment_retry(experiment=experiment, user=user)
        return f"Retrying as {retry.name}, on the same frozen data.", retry
    if action == "promote":
        experiment_promote(experiment=experiment, role=form.get("role"), user=user)
        return f"{experiment.model_version} is the {form.get('role')} now.", experiment
    if action == "reject":
        experiment_reject(experiment=experiment, user=user)
        return f"Rejected {experiment.model_version}: it stays in the registry.", experiment
    if action == "restore":
        experiment_restore(experiment=experiment, user=user)
        return "Restored: the deployment serves what it served before this experiment.", experiment
    raise ValidationFailed.from_errors([FieldError("action", "must be cancel, retry, promote, reject or restore")])
