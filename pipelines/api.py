"""The data pipeline's API: the feedback loop (set up, attach, detach, on/off, submit), projects, continuous training
and its experiments, continuous deployment."""
import uuid

from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.api.datasets import dataset_version_json, dataset_version_of
from dashboard.fields import uuid_field
from dashboard.errors import FieldError, NotFound, ValidationFailed
from dashboard.models import Role
from dashboard.selectors.access import deployment_for_member, memberships_of, organization_for_member
from dashboard.selectors.assets import predicted_assets_matching
from pipelines.models import ContinuousDeployment, ContinuousTraining, Experiment, FeedbackLoop, Project
from pipelines.selectors import feedback_loop_of, feedback_loop_versions
from pipelines.services.deployment import (
    continuous_deployment_setup, continuous_deployment_toggle, experiment_promote, experiment_reject, experiment_restore,
)
from pipelines.services.feedback_loop import (
    feedback_loop_attach, feedback_loop_detach, feedback_loop_setup, feedback_loop_submit, feedback_loop_toggle,
)
from pipelines.services.training import (
    continuous_training_attach, continuous_training_detach, continuous_training_setup, continuous_training_toggle,
    experiment_cancel, experiment_for, experiment_retry, experiment_start, project_create, training_datasets,
)

MAX_SUBMIT_IDS = 10_000
EXPERIMENT_ACTIONS = ("cancel", "retry", "promote", "reject", "restore")


def feedback_loop_json(loop: FeedbackLoop) -> dict:
    return {
        "deployment_id": str(loop.deployment_id),
        "active": loop.active,
        "submitted_since_training": loop.submitted_since_training,
        "dataset_versions": [dataset_version_json(v) for v in feedback_loop_versions(deployment=loop.deployment)],
    }


@api_view(methods=("POST",))
def feedback_loop_setup_view(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    body = json_body(request)
    if body is None:
        body = {}
    require_fields(body)
    version = None
    if body.get("dataset_version_id") is not None:
        version = dataset_version_of(deployment, body["dataset_version_id"])
    loop = feedback_loop_setup(deployment=deployment, dataset_version=version)
    return 200, feedback_loop_json(loop)


@api_view(methods=("GET", "PUT"))
def feedback_loop_view(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        loop = feedback_loop_of(deployment=deployment)
        return 200, feedback_loop_json(loop) if loop else {"deployment_id": str(deployment.id), "active": False,
                                                          "submitted_since_training": 0, "dataset_versions": []}
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    body = json_body(request)
    if not isinstance(body, dict) or "active" not in body:
        raise ValidationFailed.from_errors([FieldError("active", "is required (true or false)")])
    return 200, feedback_loop_json(feedback_loop_toggle(deployment=deployment, active=body["active"]))


@api_view(methods=("GET", "POST", "DELETE"))
def feedback_loop_datasets(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        return 200, {"items": [dataset_version_json(v) for v in feedback_loop_versions(deployment=deployment)]}
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    version = dataset_version_of(deployment, require_fields(json_body(request), "dataset_version_id")["dataset_version_id"])
    change = feedback_loop_attach if request.method == "POST" else feedback_loop_detach
    return 200, feedback_loop_json(change(deployment=deployment, dataset_version=version))


@api_view(methods=("POST",))
def feedback_loop_submit_view(request: HttpRequest, deployment_id):
    # Labelers submit what they reviewed: the lowest role is enough.
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    body = require_fields(json_body(request))
    ids, query = body.get("predicted_asset_ids"), body.get("q")
    if (ids is None) == (query is None):
        raise ValidationFailed.from_errors([FieldError("predicted_asset_ids", "give predicted_asset_ids or q, not both")])
    if query is not None:
        if not isinstance(query, str):
            raise ValidationFailed.from_errors([FieldError("q", "must be a string")])
        assets = predicted_assets_matching(deployment=deployment, query=query)
    else:
        assets = predicted_assets_matching(deployment=deployment).filter(pk__in=_asset_ids(ids, deployment))
    result = feedback_loop_submit(deployment=deployment, assets=assets)
    return 200, {"submitted": result.submitted, "skipped": result.skipped, "added": result.added,
                 "updated": result.updated}


def _asset_ids(ids, deployment) -> list[uuid.UUID]:
    if not isinstance(ids, list) or not ids or len(ids) > MAX_SUBMIT_IDS:
        raise ValidationFailed.from_errors(
            [FieldError("predicted_asset_ids", f"must be a list of 1 to {MAX_SUBMIT_IDS:,} ids")]
        )
    parsed = [uuid_field(value, f"predicted_asset_ids[{index}]") for index, value in enumerate(ids)]
    known = set(deployment.predicted_assets.filter(pk__in=parsed).values_list("id", flat=True))
    unknown = [FieldError(f"predicted_asset_ids[{index}]", "is no predicted asset of this deployment")
               for index, value in enumerate(parsed) if value not in known]
    if unknown:
        raise ValidationFailed.from_errors(unknown)
    return parsed


# Projects


def project_json(project: Project) -> dict:
    return {"id": str(project.id), "name": project.name, "organization_id": str(project.organization_id),
            "created_at": project.created_at.isoformat()}


@api_view(methods=("GET", "POST"))
def projects(request: HttpRequest):
    if request.method == "POST":
        body = require_fields(json_body(request), "name", "organization_id")
        organization = organization_for_member(user=request.api_user, role=Role.ADMIN,
                                               organization_id=uuid_field(body["organization_id"], "organization_id"))
        return 201, project_json(project_create(organization=organization, name=body["name"]))
    organization_ids = [m.organization_id for m in memberships_of(user=request.api_user)]
    queryset = Project.objects.filter(organization_id__in=organization_ids)
    if organization_id := request.GET.get("organization_id"):
        queryset = queryset.filter(organization_id=uuid_field(organization_id, "organization_id"))
    if name := request.GET.get("name"):
        queryset = queryset.filter(name=name)
    return 200, {"items": [project_json(project) for project in queryset]}


# Continuous training


def continuous_training_json(deployment) -> dict:
    ct = ContinuousTraining.objects.select_related("project").filter(deployment=deployment).first()
    loop = FeedbackLoop.objects.filter(deployment=deployment).first()
    body = {"deployment_id": str(deployment.id), "set_up": ct is not None,
            "submitted_since_training": loop.submitted_since_training if loop else 0,
            "datasets": [{"alias": alias, **dataset_version_json(version)}
                         for alias, version in training_datasets(deployment=deployment)]}
    if ct is not None:
        body.update(active=ct.active, project=project_json(ct.project), trigger=ct.trigger, threshold=ct.threshold,
                    experiment_parameters=ct.experiment_parameters, backend=ct.backend, command=ct.command)
    return body


@api_view(methods=("GET", "POST", "PUT"))
def continuous_training_view(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        return 200, continuous_training_json(deployment)
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    if request.method == "PUT":
        body = require_fields(json_body(request))
        if "active" not in body:
            raise ValidationFailed.from_errors([FieldError("active", "is required (true or false)")])
        continuous_training_toggle(deployment=deployment, active=body["active"])
        return 200, continuous_training_json(deployment)
    body = require_fields(json_body(request), "project_id")
    project = Project.objects.filter(pk=uuid_field(body["project_id"], "project_id"),
                                     organization_id=deployment.organization_id).first()
    if project is None:
        raise ValidationFailed.from_errors([FieldError("project_id", "no project of this organization has this id")])
    continuous_training_setup(deployment=deployment, project=project, trigger=body.get("trigger"),
                              threshold=body.get("threshold"), experiment_parameters=body.get("experiment_parameters"),
                              backend=body.get("backend"), command=body.get("command"))
    return 200, continuous_training_json(deployment)


@api_view(methods=("GET", "POST", "DELETE"))
def continuous_training_datasets(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        return 200, {"items": continuous_training_json(deployment)["datasets"]}
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    body = require_fields(json_body(request), "dataset_version_id")
    version = dataset_version_of(deployment, body["dataset_version_id"])
    if request.method == "POST":
        continuous_training_attach(deployment=deployment, dataset_version=version, alias=body.get("alias"))
    else:
        continuous_training_detach(deployment=deployment, dataset_version=version)
    return 200, continuous_training_json(deployment)


# Continuous deployment


def continuous_deployment_json(deployment) -> dict:
    cd = ContinuousDeployment.objects.filter(deployment=deployment).first()
    if cd is None:
        return {"deployment_id": str(deployment.id), "set_up": False}
    return {"deployment_id": str(deployment.id), "set_up": True, "policy": cd.policy, "active": cd.active,
            "gate_metric": cd.gate_metric}


@api_view(methods=("GET", "POST", "PUT"))
def continuous_deployment_view(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        return 200, continuous_deployment_json(deployment)
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    body = require_fields(json_body(request))
    if request.method == "PUT":
        if "active" not in body:
            raise ValidationFailed.from_errors([FieldError("active", "is required (true or false)")])
        continuous_deployment_toggle(deployment=deployment, active=body["active"])
    else:
        require_fields(body, "policy")
        continuous_deployment_setup(deployment=deployment, policy=body["policy"], gate_metric=body.get("gate_metric"))
    return 200, continuous_deployment_json(deployment)


# Experiments


def experiment_json(experiment: Experiment, *, with_log: bool = False) -> dict:
    body = {
        "id": str(experiment.id), "name": experiment.name, "deployment_id": str(experiment.deployment_id),
        "project_id": str(experiment.project_id), "status": experiment.status, "started_by": experiment.started_by,
        "backend": experiment.backend, "parameters": experiment.parameters, "metrics": experiment.metrics,
        "datasets": [{"alias": row.alias, "dataset_version_id": str(row.dataset_version_id),
                      "copied_from_id": str(row.copied_from_id) if row.copied_from_id else None}
                     for row in experiment.datasets.all()],
        "base_model_version_id": str(experiment.base_model_version_id) if experiment.base_model_version_id else None,
        "model_version_id": str(experiment.model_version_id) if experiment.model_version_id else None,
        "deployment_action": experiment.deployment_action, "deployment_note": experiment.deployment_note,
        "retry_of": str(experiment.retry_of_id) if experiment.retry_of_id else None,
        "created_at": experiment.created_at.isoformat(),
        "started_at": experiment.started_at.isoformat() if experiment.started_at else None,
        "finished_at": experiment.finished_at.isoformat() if experiment.finished_at else None,
    }
    if with_log:
        body["log"] = experiment.log
    return body


@api_view(methods=("GET", "POST"))
def experiments(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        items = deployment.experiments.prefetch_related("datasets")[:100]
        return 200, {"items": [experiment_json(experiment) for experiment in items]}
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    return 201, experiment_json(experiment_start(deployment=deployment, user=request.api_user))


@api_view(methods=("GET",))
def experiment_detail(request: HttpRequest, deployment_id, experiment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    return 200, experiment_json(experiment_for(deployment=deployment, experiment_id=experiment_id), with_log=True)


@api_view(methods=("POST",))
def experiment_action(request: HttpRequest, deployment_id, experiment_id, action):
    if action not in EXPERIMENT_ACTIONS:
        raise NotFound(f"no experiment action {action!r}; there are: {', '.join(EXPERIMENT_ACTIONS)}")
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    experiment = experiment_for(deployment=deployment, experiment_id=experiment_id)
    if action == "cancel":
        experiment = experiment_cancel(experiment=experiment, user=request.api_user)
    elif action == "retry":
        experiment = experiment_retry(experiment=experiment, user=request.api_user)
        return 201, experiment_json(experiment)
    elif action == "promote":
        body = require_fields(json_body(request), "role")
        experiment = experiment_promote(experiment=experiment, role=body["role"], user=request.api_user)
    elif action == "restore":
        experiment = experiment_restore(experiment=experiment, user=request.api_user)
    else:
        experiment = experiment_reject(experiment=experiment, user=request.api_user)
    return 200, experiment_json(experiment)
