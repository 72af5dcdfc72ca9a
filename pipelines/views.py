"""The feedback-loop page of a deployment: attach and detach dataset versions, on and off, the training data."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dashboard.errors import ApiError, NotFound
from dashboard.models import DatasetVersion, Role
from dashboard.selectors.datasets import dataset_version_in, versions_with_counts
from dashboard.selectors.access import deployment_for_member, role_require
from monitoring.selectors import training_data_of
from monitoring.services.training_data import training_data_disable, training_data_set
from pipelines.selectors import feedback_loop_of, feedback_loop_versions
from pipelines.services.feedback_loop import feedback_loop_attach, feedback_loop_detach, feedback_loop_setup, feedback_loop_toggle


@login_required
@require_http_methods(["GET", "POST"])
def feedback_loop_settings(request, deployment_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    if request.method == "POST":
        role_require(held=membership.role, role=Role.ADMIN)
        try:
            messages.success(request, _feedback_loop_action(deployment, request.POST))
        except ApiError as error:
            messages.error(request, error.message)
        return redirect("feedback-loop", deployment.id)
    attached = feedback_loop_versions(deployment=deployment)
    candidates = versions_with_counts(
        DatasetVersion.objects.filter(dataset__organization_id=deployment.organization_id, type=deployment.type)
    ).order_by("dataset__name", "created_at")
    context = {
        "deployment": deployment,
        "is_admin": membership.allows(Role.ADMIN),
        "loop": feedback_loop_of(deployment=deployment),
        "attached": attached,
        "candidates": [v for v in candidates if v.id not in {a.id for a in attached}],
        "all_versions": list(candidates),
        "training": training_data_of(deployment=deployment),
    }
    return render(request, "pipelines/feedback_loop.html", context)


def _feedback_loop_action(deployment, form) -> str:
    """Carry out the form's action; returns what happened, in words for the page."""
    action = form.get("action")
    version = None
    if form.get("dataset_version_id"):
        try:
            version = dataset_version_in(organization_id=deployment.organization_id,
                                         version_id=form["dataset_version_id"])
        except (NotFound, ValueError, ValidationError):  # a malformed id is as unknown as a missing one
            raise NotFound("that dataset version was not found") from None
    name = f"{version.dataset.name} {version.version}" if version is not None else ""
    if action == "setup":
        feedback_loop_setup(deployment=deployment, dataset_version=version)
        return "The feedback loop is set up and on."
    if action in ("activate", "deactivate"):
        feedback_loop_toggle(deployment=deployment, active=action == "activate")
        return "The feedback loop is on." if action == "activate" else "The feedback loop is off: nothing can be submitted."
    if action == "attach" and version is not None:
        feedback_loop_attach(deployment=deployment, dataset_version=version)
        return f"Attached {name}: submitted predictions are added to it."
    if action == "detach" and version is not None:
        feedback_loop_detach(deployment=deployment, dataset_version=version)
        return f"Detached {name}: what it holds stays in it."
    if action == "training" and version is not None:
        training_data_set(deployment=deployment, dataset_version=version)
        return f"{name} is the training data now: a worker computes its reference, then rescores the predictions."
    if action == "training-disable":
        training_data_disable(deployment=deployment)
        return "Training data disabled: scores go back to the deployment's own history (rescored in the background)."
    raise NotFound("choose an action and a dataset version")
