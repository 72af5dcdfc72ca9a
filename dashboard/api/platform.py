"""The platform API the Python client calls: organizations, deployments and their predicted assets."""

from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, jwt_deployment_check, require_fields
from dashboard.api.representations import asset_json, deployment_json, label_json
from dashboard.errors import FieldError, ValidationFailed
from dashboard.fields import Fields, integer_param, uuid_field
from dashboard.models import Role
from dashboard.selectors.access import deployment_for_member, deployments_visible_to, memberships_of, organization_for_member
from dashboard.selectors.assets import DEFAULT_SORT, predicted_asset_find, predicted_assets_page
from dashboard.selectors.members import workers_of
from dashboard.services.deployments import (
    deployment_create, deployment_delete, deployment_tags_change, deployment_update, label_add, label_delete,
    label_rename, label_retire,
)


@api_view(methods=("GET",))
def organizations(request: HttpRequest):
    items = [
        {"id": str(m.organization_id), "name": m.organization.name, "role": m.role}
        for m in memberships_of(user=request.api_user)
    ]
    return 200, {"items": items}


@api_view(methods=("GET", "POST"))
def deployments(request: HttpRequest):
    if request.method == "POST":
        body = require_fields(json_body(request), "organization_id")
        organization = organization_for_member(user=request.api_user, role=Role.ADMIN,
                                               organization_id=uuid_field(body["organization_id"], "organization_id"))
        deployment = deployment_create(
            organization=organization, name=body.get("name"), type=body.get("type"), labels=body.get("labels"),
            min_threshold=body.get("min_threshold"), tags=body.get("tags"), actor=request.api_user,
        )
        return 201, deployment_json(deployment, request)
    queryset = deployments_visible_to(user=request.api_user).prefetch_related("labels")
    if organization_id := request.GET.get("organization_id"):
        organization = organization_for_member(user=request.api_user, organization_id=uuid_field(organization_id, "organization_id"))
        queryset = queryset.filter(organization=organization)
    if name := request.GET.get("name"):
        queryset = queryset.filter(name=name)
    return 200, {"items": [deployment_json(deployment, request) for deployment in queryset]}


@api_view(methods=("GET", "PATCH", "DELETE"), auth="jwt")
def deployment_detail(request: HttpRequest, deployment_id):
    jwt_deployment_check(request, deployment_id)
    if request.method == "DELETE":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
        deleted = deployment_delete(deployment=deployment, force_delete=_flag(request, "force_delete"),
                                    actor=request.api_user)
        return 200, {"id": str(deployment_id), "deleted": True, "predicted_assets_deleted": deleted}
    if request.method == "PATCH":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
        deployment = deployment_update(deployment=deployment, changes=require_fields(json_body(request)),
                                       actor=request.api_user)
    else:
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    return 200, deployment_json(deployment, request)


@api_view(methods=("GET",))
def predicted_assets(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    page = predicted_assets_page(
        deployment=deployment,
        query=request.GET.get("q", ""),
        order=request.GET.get("order_by") or DEFAULT_SORT,
        cursor=request.GET.get("cursor"),
        offset=integer_param(request.GET.get("offset"), "offset", low=0, high=10**9, default=0),
        limit=integer_param(request.GET.get("limit"), "limit", low=1, high=1000, default=100),
        user=request.api_user,  # reviewed_by:me is the caller
    )
    return 200, {"items": [asset_json(asset, request) for asset in page.items], "next_cursor": page.next_cursor}


@api_view(methods=("GET",))
def predicted_asset_lookup(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    names = ("id", "oracle_prediction_id", "filename", "object_name", "data_id")
    asset = predicted_asset_find(deployment=deployment, **{name: request.GET.get(name) for name in names})
    return 200, asset_json(asset, request)


@api_view(methods=("GET", "POST", "DELETE"))
def deployment_tags(request: HttpRequest, deployment_id):
    """GET the deployment's tags; POST {"tags": [...]} adds, DELETE {"tags": [...]} removes (answering the rest)."""
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        tags = deployment.tags
    else:
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
        names = require_fields(json_body(request), "tags")["tags"]
        change = {"add": names} if request.method == "POST" else {"remove": names}
        tags = deployment_tags_change(deployment=deployment, actor=request.api_user, **change)
    return 200, {"items": [{"name": tag} for tag in tags]}


@api_view(methods=("GET",))
def deployment_workers(request: HttpRequest, deployment_id):
    """The members who may review the deployment, with their role in its organization."""
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    items = [
        {"user_id": str(m.user_id), "username": m.user.get_username(), "email": m.user.email, "role": m.role}
        for m in workers_of(deployment=deployment)
    ]
    return 200, {"items": items}


@api_view(methods=("GET", "POST", "PATCH", "DELETE"))
def deployment_labels(request: HttpRequest, deployment_id):
    """The label map: GET lists it; POST {class_id, name} adds a class; PATCH {class_id, name?, retired?} renames,
    retires or restores one; DELETE {class_id} deletes one no prediction uses (409 otherwise: retire it)."""
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    else:
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
        body = require_fields(json_body(request), "class_id")
        class_id, actor = body["class_id"], request.api_user
        if request.method == "POST":
            label = label_add(deployment=deployment, class_id=class_id, name=body.get("name"), actor=actor)
            return 201, label_json(label)
        if request.method == "DELETE":
            label_delete(deployment=deployment, class_id=class_id, actor=actor)
        else:
            fields = Fields()
            retired = fields.boolean(body.get("retired"), "retired", required=False)
            fields.check()
            if "name" in body:
                label_rename(deployment=deployment, class_id=class_id, name=body["name"], actor=actor)
            if retired is not None:
                label_retire(deployment=deployment, class_id=class_id, retired=retired, actor=actor)
    return 200, {"items": [label_json(label) for label in deployment.labels.all()]}


def _flag(request: HttpRequest, name: str) -> bool:
    """A true/false query parameter (or JSON body field), as the client sends force_delete."""
    value = request.GET.get(name)
    if value is None and request.body:
        body = json_body(request)
        value = body.get(name) if isinstance(body, dict) else None
    if value in (None, "", False, "false", "False", "0"):
        return False
    if value in (True, "true", "True", "1"):
        return True
    raise ValidationFailed.from_errors([FieldError(name, f"must be true or false, not {value!r}")])
