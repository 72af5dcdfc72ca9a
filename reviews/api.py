"""The reviews API: a client saves a reviewed predicted asset (what `PredictedAsset.add_review` calls), and review
campaigns: making them, their tasks, the pool's next task, skips, rework and closing."""
from django.http import HttpRequest
from django.urls import reverse

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.api.representations import asset_json
from dashboard.errors import FieldError, NotFound, ValidationFailed
from dashboard.fields import uuid_field
from dashboard.models import PredictedAsset, Role
from dashboard.selectors.access import deployment_for_member, membership_require
from dashboard.shapes import shapes_from_review_lists
from reviews.models import ReviewCampaign, ReviewTask, TaskStatus
from reviews.selectors import campaign_for_member, campaign_progress, campaign_tasks
from reviews.services.campaigns import (
    campaign_add_assets, campaign_assign, campaign_close, campaign_create, campaign_next_task, task_accept, task_rework,
    task_skip,
)
from reviews.services.review import review_submit


@api_view(methods=("POST",))
def asset_reviews(request: HttpRequest, asset_id):
    asset = PredictedAsset.objects.filter(pk=asset_id).only("id", "deployment_id").first()
    if asset is None:
        raise NotFound(f"predicted asset {asset_id} not found")
    deployment_for_member(user=request.api_user, deployment_id=asset.deployment_id)  # any member may review
    body = require_fields(json_body(request))
    lists = shapes_from_review_lists(body)
    try:
        review_submit(asset_id=asset.pk, reviewer=request.api_user, shapes=lists.shapes,
                      expected_version=body.get("expected_version"))
    except ValidationFailed as error:
        # Name the client's own fields (rectangles[0].x), not the service's flattened list (shapes[0].x).
        raise ValidationFailed.from_errors([lists.client_field(item) for item in error.errors]) from None
    # The whole asset as it now stands, for its representation (the service returns only what it wrote).
    saved = PredictedAsset.objects.select_related("data", "deployment").prefetch_related("predictions").get(pk=asset.pk)
    return 201, asset_json(saved, request)


# Review campaigns


def campaign_json(campaign: ReviewCampaign, request: HttpRequest, *, with_progress: bool = True) -> dict:
    body = {
        "id": str(campaign.id), "deployment_id": str(campaign.deployment_id), "description": campaign.description,
        "instructions_text": campaign.instructions_text,
        "instructions_file_url": request.build_absolute_uri(reverse("campaign-instructions", args=[campaign.id]))
        if campaign.instructions_file else None,
        "end_date": campaign.end_date.isoformat() if campaign.end_date else None,
        "auto_add_new_assets": campaign.auto_add_new_assets,
        "auto_close_on_completion": campaign.auto_close_on_completion, "query": campaign.query,
        "status": campaign.status, "created_at": campaign.created_at.isoformat(),
        "closed_at": campaign.closed_at.isoformat() if campaign.closed_at else None,
    }
    if with_progress:
        body["progress"] = campaign_progress(campaign=campaign)
    return body


def task_json(task: ReviewTask) -> dict:
    return {"id": task.pk, "campaign_id": str(task.campaign_id), "predicted_asset_id": str(task.asset_id),
            "position": task.position, "status": task.status,
            "assignee": task.assignee.get_username() if task.assignee else None,
            "lease_until": task.lease_until.isoformat() if task.lease_until else None,
            "skip_reason": task.skip_reason, "rework_comment": task.rework_comment,
            "done_by": task.done_by.get_username() if task.done_by else None,
            "done_at": task.done_at.isoformat() if task.done_at else None}


def _flag(value):
    # Form fields arrive as text: "true"/"false" (the JSON body sends real booleans).
    return {"true": True, "false": False, "1": True, "0": False}.get(value.lower(), value) if isinstance(value, str) else value


@api_view(methods=("GET", "POST"))
def deployment_campaigns(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        items = deployment.campaigns.all()[:100]
        return 200, {"items": [campaign_json(campaign, request, with_progress=False) for campaign in items]}
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ML_LEAD)
    if request.content_type == "multipart/form-data":
        body = request.POST
        upload = request.FILES.get("instructions_file")
        instructions_file = (upload.name, upload.read()) if upload else None
    else:
        body = require_fields(json_body(request) or {})
        instructions_file = None
    ids = body.get("predicted_asset_ids")
    assignees = body.getlist("assignees") if hasattr(body, "getlist") else body.get("assignees")
    if assignees is not None and not (isinstance(assignees, list) and all(isinstance(a, str) for a in assignees)):
        raise ValidationFailed.from_errors([FieldError("assignees", "must be a list of usernames")])
    campaign = campaign_create(
        deployment=deployment, user=request.api_user, description=body.get("description") or "",
        instructions_text=body.get("instructions_text") or "", instructions_file=instructions_file,
        end_date=body.get("end_date"), auto_add_new_assets=_flag(body.get("auto_add_new_assets", False)),
        auto_close_on_completion=_flag(body.get("auto_close_on_completion", False)), query=body.get("q"),
        asset_ids=[uuid_field(value, "predicted_asset_ids") for value in ids] if isinstance(ids, list) else None,
        assignees=assignees or None)
    return 201, campaign_json(campaign, request)


@api_view(methods=("GET",))
def campaign_detail(request: HttpRequest, campaign_id):
    return 200, campaign_json(campaign_for_member(user=request.api_user, campaign_id=campaign_id), request)


@api_view(methods=("POST",))
def campaign_assets(request: HttpRequest, campaign_id):
    campaign = campaign_for_member(user=request.api_user, campaign_id=campaign_id, role=Role.ML_LEAD)
    body = require_fields(json_body(request))
    ids = body.get("predicted_asset_ids")
    added = campaign_add_assets(campaign=campaign, query=body.get("q") or "",
                                asset_ids=[uuid_field(v, "predicted_asset_ids") for v in ids] if isinstance(ids, list) else None)
    return 200, {"added": added, **campaign_json(campaign, request)}


@api_view(methods=("GET",))
def campaign_task_list(request: HttpRequest, campaign_id):
    campaign, membership = _campaign_and_membership(request, campaign_id)
    assignee = request.GET.get("assignee") or None
    if not membership.allows(Role.ML_LEAD):
        assignee = request.api_user.get_username()  # a labeler sees their own tasks
    status = request.GET.get("status") or None
    if status and status not in TaskStatus.values:
        raise ValidationFailed.from_errors([FieldError("status", f"must be one of {', '.join(TaskStatus.values)}")])
    tasks = campaign_tasks(campaign=campaign, status=status, assignee=assignee)[:5000]
    return 200, {"items": [task_json(task) for task in tasks]}


def _campaign_and_membership(request, campaign_id, role=Role.LABELER):
    campaign = campaign_for_member(user=request.api_user, campaign_id=campaign_id, role=role)
    membership = membership_require(user=request.api_user, organization_id=campaign.deployment.organization_id,
                                    what="campaign")
    return campaign, membership


@api_view(methods=("POST",))
def campaign_action(request: HttpRequest, campaign_id, action):
    if action == "next":
        campaign = campaign_for_member(user=request.api_user, campaign_id=campaign_id)
        task = campaign_next_task(campaign=campaign, user=request.api_user)
        return 200, {"task": task_json(task) if task else None}
    campaign = campaign_for_member(user=request.api_user, campaign_id=campaign_id, role=Role.ML_LEAD)
    if action == "close":
        return 200, campaign_json(campaign_close(campaign=campaign), request)
    if action == "assign":
        body = require_fields(json_body(request), "assignees")
        assignees = body["assignees"] if isinstance(body["assignees"], list) else [body["assignees"]]
        assigned = campaign_assign(campaign=campaign, assignees=assignees, mode=body.get("mode") or "round_robin",
                                   task_ids=body.get("task_ids"), query=body.get("q"))
        return 200, {"assigned": assigned, **campaign_json(campaign, request)}
    raise NotFound(f"no campaign action {action!r}; there are: next, assign, close")


@api_view(methods=("POST",))
def task_action(request: HttpRequest, task_id, action):
    task = ReviewTask.objects.select_related("campaign__deployment").filter(pk=task_id).first()
    if task is None:
        raise NotFound(f"task {task_id} not found")
    if action == "skip":
        campaign_for_member(user=request.api_user, campaign_id=task.campaign_id)
        return 200, task_json(task_skip(task=task, user=request.api_user,
                                        reason=require_fields(json_body(request)).get("reason")))
    campaign_for_member(user=request.api_user, campaign_id=task.campaign_id, role=Role.ML_LEAD)
    if action == "rework":
        return 200, task_json(task_rework(task=task, user=request.api_user,
                                          comment=require_fields(json_body(request)).get("comment")))
    if action == "accept":
        return 200, task_json(task_accept(task=task, user=request.api_user))
    raise NotFound(f"no task action {action!r}; there are: skip, rework, accept")
