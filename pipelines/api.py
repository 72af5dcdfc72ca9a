"""The feedback-loop API: set it up, attach or detach dataset versions, turn it on or off, submit reviewed predictions."""
import uuid

from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.api.datasets import dataset_version_json, dataset_version_of
from dashboard.fields import uuid_field
from dashboard.errors import FieldError, ValidationFailed
from dashboard.models import Role
from dashboard.selectors.access import deployment_for_member
from dashboard.selectors.assets import predicted_assets_matching
from pipelines.models import FeedbackLoop
from pipelines.selectors import feedback_loop_of, feedback_loop_versions
from pipelines.services import (
    feedback_loop_attach, feedback_loop_detach, feedback_loop_setup, feedback_loop_submit, feedback_loop_toggle,
)

MAX_SUBMIT_IDS = 10_000


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
    return 200, {"submitted": result.submitted, "skipped": result.skipped}


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
