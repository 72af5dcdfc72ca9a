"""The labeling team's pages: the review queue (grid, table, details), one predicted asset and its review tool."""
import datetime as dt
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.errors import ApiError, Forbidden, ValidationFailed
from dashboard.query import QUERY_HELP, parse_query
from dashboard.models import AssetStatus, Role
from dashboard.selectors.assets import (
    COUNT_CAP, DEFAULT_SORT, SORTS, count_upto, predicted_assets_matching, predicted_assets_page,
    predicted_assets_waiting_count,
)
from dashboard.selectors.deployments import display_shapes, label_map
from dashboard.selectors.predictions import asset_predictions
from dashboard.selectors.access import deployment_for_member, membership_require, role_require
from monitoring.selectors import outlier_reference_active
from pipelines.selectors import feedback_loop_of, feedback_loop_preview, feedback_loop_versions
from pipelines.services.feedback_loop import feedback_loop_submit
from reviews.models import CampaignStatus, ReviewKind, ReviewTask, TaskStatus
from reviews.selectors import (
    asset_for_review, campaign_for_member, campaign_progress, campaign_tasks, instructions_html, next_asset, review_cards, review_history,
    review_tool_data,
)
from reviews.services.campaigns import (
    campaign_add_assets, campaign_assign, campaign_close, campaign_create, campaign_next_task, labelers_of, task_accept,
    task_rework, task_skip,
)
from reviews.services.review import bulk_accept, review_submit

VIEWS = {"grid": "Grid", "table": "Table", "details": "Details"}
PAGE_SIZE = 48


def _queue_state(params) -> dict:
    """The queue's query, sort and view, from a page's GET parameters or a bulk action's form."""
    sort = params.get("sort") or DEFAULT_SORT
    view = params.get("view") or "grid"
    return {
        "q": params.get("q", "").strip(),
        "sort": sort if sort in SORTS else DEFAULT_SORT,
        "view": view if view in VIEWS else "grid",
    }


def _queue_search(params) -> tuple[dict, dict | None]:
    """The queue's state and, when its query cannot be read, the parser's message: every page taking `q` reads it
    here, so a malformed search is shown as the parser explains it, never as a server error."""
    state = _queue_state(params)
    try:
        parse_query(state["q"])
    except ValidationFailed as error:
        return state, _query_error(error, state["q"])
    return state, None


class _Unreadable(Exception):
    """The page's search was refused by the parser: nothing to list."""


def _query_error(error: ValidationFailed, query: str) -> dict:
    """The message, and the query split around the part at fault so the page can underline it."""
    position = getattr(error, "position", None)
    if position is None:
        return {"message": error.message, "before": query, "fault": "", "after": ""}
    end = position + max(1, getattr(error, "length", 1))
    return {"message": error.message, "before": query[:position], "fault": query[position:end] or " ",
            "after": query[end:]}


@login_required
@require_GET
@vary_on_headers("HX-Request")
def queue(request, deployment_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    state, error = _queue_search(request.GET)
    context = {
        "deployment": deployment,
        "membership": membership,
        "state": state,
        "views": VIEWS,
        "sorts": {key: sort.label for key, sort in SORTS.items()},
        "query_help": QUERY_HELP,
        "opened_at": timezone.now().isoformat(),
        "reference_size": settings.LOUPE_OUTLIER_REFERENCE_SIZE,
        "reference": outlier_reference_active(deployment=deployment),
        "waiting": predicted_assets_waiting_count(deployment=deployment),
        "cards": [],
        "count": None,
        "next_cursor": None,
        "error": error,
    }
    try:
        if error:
            raise _Unreadable
        page = predicted_assets_page(
            deployment=deployment, query=state["q"], order=state["sort"], user=request.user,
            cursor=(request.GET.get("cursor") if request.htmx else None) or None, limit=PAGE_SIZE,
        )
        context["cards"] = review_cards(deployment=deployment, assets=page.items)
        context["next_cursor"] = page.next_cursor
        if page.next_cursor:
            context["next_url"] = "?" + urlencode({**state, "cursor": page.next_cursor})
    except _Unreadable:
        pass
    except ValidationFailed as cursor_error:  # a cursor from another sort
        context["error"] = _query_error(cursor_error, state["q"])
    context["state_query"] = urlencode(state)
    template = "reviews/queue.html"
    if request.htmx and request.GET.get("cursor"):
        template += "#page"
    elif request.htmx and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


@login_required
@require_GET
def queue_count(request, deployment_id):
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id)
    state = _queue_state(request.GET)
    try:
        count = count_upto(predicted_assets_matching(deployment=deployment, query=state["q"], user=request.user))
    except ValidationFailed:
        count = None
    return render(request, "reviews/queue.html#count", {"count": count, "state": state, "error": count is None,
                                                        "count_cap": COUNT_CAP})


@login_required
@require_GET
def queue_new(request, deployment_id):
    """How many assets matching the query arrived since the page was opened (polled while it is open)."""
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id)
    state = _queue_state(request.GET)
    try:
        opened_at = dt.datetime.fromisoformat(request.GET.get("opened_at", ""))
        new = count_upto(predicted_assets_matching(deployment=deployment, query=state["q"], user=request.user)
                         .filter(created_at__gt=opened_at))
    except (ValueError, ValidationFailed):
        new = 0
    return render(
        request, "reviews/queue.html#new",
        {"new": new, "count_cap": COUNT_CAP, "deployment": deployment, "state_query": urlencode(state), "opened_at": request.GET.get("opened_at", "")},
    )


@login_required
@require_GET
def asset_detail(request, deployment_id, asset_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    asset = get_object_or_404(
        predicted_assets_matching(deployment=deployment).select_related("reviewed_by").prefetch_related("predictions"),
        pk=asset_id,
    )
    labels = label_map(deployment)
    predictions = asset_predictions(asset)
    shadow = predictions.shadow
    state, error = _queue_search(request.GET)
    card = review_cards(deployment=deployment, assets=[asset], labels=labels)[0]
    context = {
        "query_error": error,
        "deployment": deployment,
        "asset": asset,
        "card": card,
        "reviewed_shapes": card["shapes"] if card["model_card"] else [],
        # The first save is compared with what the model's picture draws: its shapes over the threshold.
        "history": review_history(asset=asset, model_shapes=[
            shape for shape in predictions.champion_shapes
            if shape.get("score") is None or shape["score"] >= deployment.min_threshold]),
        "champion": predictions.champion,
        "shadow": shadow,
        "shadow_shapes": display_shapes(shadow.shapes, labels=labels, min_threshold=0) if shadow else [],
        "champion_shapes": display_shapes(predictions.champion_shapes, labels=labels, min_threshold=0),
        "state_query": urlencode(state),
    }
    return render(request, "reviews/asset_detail.html", context)


@login_required
@require_GET
def review_tool(request, deployment_id, asset_id):
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id)
    asset = get_object_or_404(
        predicted_assets_matching(deployment=deployment).select_related("reviewed_by").prefetch_related("predictions"),
        pk=asset_id,
    )
    state, error = _queue_search(request.GET)
    following = None if error else next_asset(deployment=deployment, asset=asset, query=state["q"],
                                              order=state["sort"], user=request.user)
    state_query = urlencode(state)
    history = list(asset.reviews.select_related("reviewer")[:10])  # newest first
    data = review_tool_data(deployment=deployment, asset=asset, last=history[0] if history else None)
    data["next_url"] = (reverse("review-tool", args=[deployment.id, following.id]) + "?" + state_query
                        if following else reverse("queue", args=[deployment.id]) + "?" + state_query)
    campaign = task = None
    if request.GET.get("campaign") and _is_uuid(request.GET["campaign"]):
        # Working a campaign: its instructions beside the image, and "next" is the labeler's next task in it.
        campaign = campaign_for_member(user=request.user, campaign_id=request.GET["campaign"])
        task = campaign.tasks.filter(asset=asset).first()
        data["next_url"] = reverse("campaign-next", args=[campaign.id])
        following = None
    context = {
        "campaign": campaign,
        "task": task,
        "instructions": instructions_html(campaign) if campaign else "",
        "deployment": deployment,
        "asset": asset,
        "data": data,
        "next": following,
        "state_query": state_query,
        "history": history,
        "query_error": error,
    }
    return render(request, "reviews/review_tool.html", context)


@api_view(methods=("POST",), auth="session")
def review_save(request, deployment_id, asset_id):
    """The tool's save: JSON in ({shapes, expected_version, kind}), the new version out, errors as the API's."""
    target = asset_for_review(user=request.user, deployment_id=deployment_id, asset_id=asset_id)
    body = require_fields(json_body(request))
    kind = body.get("kind") if body.get("kind") in (ReviewKind.ACCEPT, ReviewKind.REVIEW) else ReviewKind.REVIEW
    asset = review_submit(asset_id=target.pk, reviewer=request.user, shapes=body.get("shapes"), kind=kind,
                          expected_version=body.get("expected_version"), asset=target)
    return 200, {"version": asset.version, "status": asset.status}


def _selection(request, deployment):
    """The queue's state and the assets a bulk action applies to: the ticked ones, or all matching the query."""
    params = request.POST if request.method == "POST" else request.GET
    state = _queue_state(params)
    everything = params.get("scope") == "all"
    assets = predicted_assets_matching(deployment=deployment, query=state["q"] if everything else "",
                                       user=request.user)
    if not everything:
        assets = assets.filter(pk__in=[value for value in params.getlist("asset") if _is_uuid(value)])
    return params, state, everything, assets


@login_required
@require_http_methods(["GET", "POST"])
def queue_bulk_accept(request, deployment_id):
    """Accept as predicted: GET confirms how many assets the selection holds, POST accepts them."""
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id)
    try:
        params, state, everything, assets = _selection(request, deployment)
        min_score = min(1.0, max(0.0, float(params.get("min_score", deployment.min_threshold))))
    except (ValueError, ValidationFailed):
        return redirect(reverse("queue", args=[deployment.id]) + "?" + urlencode(_queue_state(request.POST or request.GET)))
    if request.method == "POST":
        accepted = bulk_accept(deployment=deployment, assets=assets, reviewer=request.user, min_score=min_score)
        return render(request, "reviews/bulk_accept.html", {
            "deployment": deployment, "done": True, "accepted": accepted, "state_query": urlencode(state)})
    context = {
        "deployment": deployment,
        "count": assets.exclude(status=AssetStatus.SUBMITTED).count(),
        "submitted": assets.filter(status=AssetStatus.SUBMITTED).count(),
        "min_score": min_score,
        "everything": everything,
        "asset_ids": params.getlist("asset"),
        "nothing_ticked": not everything and not params.getlist("asset"),
        "state": state,
        "state_query": urlencode(state),
    }
    return render(request, "reviews/bulk_accept.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def queue_submit(request, deployment_id):
    """Submit to the feedback loop: GET confirms how many REVIEWED assets the selection holds, POST submits them."""
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id)
    try:
        params, state, everything, assets = _selection(request, deployment)
    except ValidationFailed:
        return redirect(reverse("queue", args=[deployment.id]) + "?" + urlencode(_queue_state(request.POST or request.GET)))
    context = {"deployment": deployment, "state": state, "state_query": urlencode(state), "everything": everything,
               "asset_ids": params.getlist("asset"), "nothing_ticked": not everything and not params.getlist("asset"),
               "versions": feedback_loop_versions(deployment=deployment),
               "loop": feedback_loop_of(deployment=deployment)}
    if request.method == "POST":
        try:
            result = feedback_loop_submit(deployment=deployment, assets=assets)
            context.update(done=True, submitted=result.submitted, skipped=result.skipped, added=result.added,
                           updated=result.updated)
        except ValidationFailed as error:
            context["error"] = error.message
        return render(request, "reviews/submit.html", context)
    context["count"] = assets.filter(status=AssetStatus.REVIEWED).count()
    context["other"] = assets.exclude(status=AssetStatus.REVIEWED).count()
    if context["count"] and context["versions"]:
        context["added"], context["updated"] = feedback_loop_preview(assets=assets, versions=context["versions"])
    return render(request, "reviews/submit.html", context)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# Review campaigns


TASKS_PER_PAGE = 50


def _campaign_page(request, campaign_id, role=Role.LABELER):
    campaign = campaign_for_member(user=request.user, campaign_id=campaign_id, role=role)
    membership = membership_require(user=request.user, organization_id=campaign.deployment.organization_id,
                                    what="campaign")
    return campaign, membership


@login_required
@require_http_methods(["GET", "POST"])
def campaign_list(request, deployment_id):
    """A deployment's campaigns; ML leads and admins make one here (from a search, or the queue's ticked assets)."""
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    is_lead = membership.allows(Role.ML_LEAD)
    if request.method == "POST":
        role_require(held=membership.role, role=Role.ML_LEAD)
        form = request.POST
        upload = request.FILES.get("instructions_file")
        try:
            campaign = campaign_create(
                deployment=deployment, user=request.user, description=form.get("description", ""),
                instructions_text=form.get("instructions_text", ""),
                instructions_file=(upload.name, upload.read()) if upload else None, end_date=form.get("end_date"),
                auto_add_new_assets=form.get("auto_add_new_assets") == "on",
                auto_close_on_completion=form.get("auto_close_on_completion") == "on", query=form.get("q", ""),
                asset_ids=[value for value in form.getlist("asset") if _is_uuid(value)] or None,
                assignees=form.getlist("assignee") or None)
        except ApiError as error:
            messages.error(request, error.message)
            return redirect(reverse("campaign-list", args=[deployment.id]) + "?" + urlencode(
                [("q", form.get("q", ""))] + [("asset", value) for value in form.getlist("asset")]))
        messages.success(request, f"Campaign made with {campaign.tasks.count()} task(s).")
        return redirect("campaign-detail", campaign.id)
    campaigns = list(deployment.campaigns.all())
    if not is_lead:
        campaigns = [c for c in campaigns if c.tasks.filter(assignee=request.user).exists() or c.tasks.filter(
            assignee__isnull=True).exists()]
    for campaign in campaigns:
        campaign.progress = campaign_progress(campaign=campaign)
    context = {"deployment": deployment, "membership": membership, "is_lead": is_lead, "campaigns": campaigns,
               "labelers": labelers_of(deployment=deployment) if is_lead else [],
               "q": request.GET.get("q", "") if request.GET.get("scope") != "selected" else "",
               "asset_ids": [value for value in request.GET.getlist("asset") if _is_uuid(value)]
               if request.GET.get("scope") == "selected" else []}
    return render(request, "reviews/campaign_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def campaign_detail(request, campaign_id):
    campaign, membership = _campaign_page(request, campaign_id)
    is_lead = membership.allows(Role.ML_LEAD)
    if request.method == "POST":
        role_require(held=membership.role, role=Role.ML_LEAD)
        action = request.POST.get("action")
        try:
            if action == "assign":
                assigned = campaign_assign(campaign=campaign, assignees=request.POST.getlist("assignee"),
                                           mode=request.POST.get("mode", "round_robin"),
                                           query=request.POST.get("q") or None)
                messages.success(request, f"Assigned {assigned} task(s).")
            elif action == "add":
                added = campaign_add_assets(campaign=campaign, query=request.POST.get("q", ""))
                messages.success(request, f"Added {added} task(s).")
            elif action == "close":
                campaign_close(campaign=campaign)
                messages.success(request, "The campaign is closed: it is read-only now.")
        except ApiError as error:
            messages.error(request, error.message)
        return redirect("campaign-detail", campaign.id)
    progress = campaign_progress(campaign=campaign)
    status = request.GET.get("status") if request.GET.get("status") in TaskStatus.values else None
    try:
        page = max(1, int(request.GET.get("page", 1)))
    except ValueError:
        page = 1
    tasks = list(campaign_tasks(campaign=campaign, status=status, assignee=None if is_lead else request.user)
                 [(page - 1) * TASKS_PER_PAGE:page * TASKS_PER_PAGE + 1])
    context = {"campaign": campaign, "deployment": campaign.deployment, "is_lead": is_lead, "progress": progress,
               "tasks": tasks[:TASKS_PER_PAGE], "page": page, "more": len(tasks) > TASKS_PER_PAGE,
               "status": status, "statuses": TaskStatus.choices,
               "instructions": instructions_html(campaign),
               "labelers": labelers_of(deployment=campaign.deployment) if is_lead else [],
               "chart": {"days": list(progress["done_per_day"]), "done": list(progress["done_per_day"].values())},
               "is_open": campaign.status == CampaignStatus.OPEN}
    return render(request, "reviews/campaign_detail.html", context)


@login_required
@require_GET
def campaign_instructions(request, campaign_id):
    campaign, _ = _campaign_page(request, campaign_id)
    if not campaign.instructions_file:
        raise Http404("this campaign has no instructions file")
    return FileResponse(default_storage.open(campaign.instructions_file.name, "rb"),
                        content_type=campaign.instructions_file_type)


@login_required
@require_GET
def campaign_next(request, campaign_id):
    """The labeler's next task in the campaign, opened in the review tool; the campaign's page when none is left."""
    campaign, _ = _campaign_page(request, campaign_id)
    task = campaign_next_task(campaign=campaign, user=request.user)
    if task is None:
        messages.info(request, "No task left for you in this campaign.")
        return redirect("campaign-detail", campaign.id)
    return redirect(reverse("review-tool", args=[campaign.deployment_id, task.asset_id]) + "?" + urlencode(
        {"campaign": str(campaign.id)}))


@login_required
@require_POST
def task_action(request, task_id, action):
    task = get_object_or_404(ReviewTask.objects.select_related("campaign"), pk=task_id)
    campaign, membership = _campaign_page(request, task.campaign_id)
    try:
        if action == "skip":
            task_skip(task=task, user=request.user, reason=request.POST.get("reason"))
            return redirect("campaign-next", campaign.id)
        role_require(held=membership.role, role=Role.ML_LEAD)
        if action == "rework":
            task_rework(task=task, user=request.user, comment=request.POST.get("comment"))
            messages.success(request, "Sent back for rework.")
        elif action == "accept":
            task_accept(task=task, user=request.user)
            messages.success(request, "Accepted.")
        else:
            raise Http404(f"no task action {action!r}")
    except ApiError as error:
        if isinstance(error, Forbidden):
            raise
        messages.error(request, error.message)
    return redirect("campaign-detail", campaign.id)
