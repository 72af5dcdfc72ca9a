"""The platform API the Python client calls: organizations, deployments and their predicted assets."""

from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, jwt_deployment_check, require_fields
from dashboard.api.representations import asset_json, deployment_json
from dashboard.fields import integer_param, uuid_field
from dashboard.models import Role
from dashboard.selectors.access import deployment_for_member, deployments_visible_to, memberships_of, organization_for_member
from dashboard.selectors.assets import DEFAULT_SORT, predicted_asset_find, predicted_assets_page
from dashboard.services.deployments import deployment_update


@api_view(methods=("GET",))
def organizations(request: HttpRequest):
    items = [
        {"id": str(m.organization_id), "name": m.organization.name, "role": m.role}
        for m in memberships_of(user=request.api_user)
    ]
    return 200, {"items": items}


@api_view(methods=("GET",))
def deployments(request: HttpRequest):
    queryset = deployments_visible_to(user=request.api_user).prefetch_related("labels")
    if organization_id := request.GET.get("organization_id"):
        organization = organization_for_member(user=request.api_user, organization_id=uuid_field(organization_id, "organization_id"))
        queryset = queryset.filter(organization=organization)
    if name := request.GET.get("name"):
        queryset = queryset.filter(name=name)
    return 200, {"items": [deployment_json(deployment, request) for deployment in queryset]}


@api_view(methods=("GET", "PATCH"), auth="jwt")
def deployment_detail(request: HttpRequest, deployment_id):
    jwt_deployment_check(request, deployment_id)
    if request.method == "PATCH":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
        deployment = deployment_update(deployment=deployment, changes=require_fields(json_body(request)))
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
    )
    return 200, {"items": [asset_json(asset, request) for asset in page.items], "next_cursor": page.next_cursor}


@api_view(methods=("GET",))
def predicted_asset_lookup(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    names = ("id", "oracle_prediction_id", "filename", "object_name", "data_id")
    asset = predicted_asset_find(deployment=deployment, **{name: request.GET.get(name) for name in names})
    return 200, asset_json(asset, request)
