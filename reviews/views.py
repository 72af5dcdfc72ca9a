"""The labeling team's pages: the review queue (grid, table, details) and one predicted asset."""
import datetime as dt
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from dashboard.errors import ValidationFailed
from dashboard.query import QUERY_HELP
from dashboard.selectors.assets import DEFAULT_SORT, SORTS, predicted_assets_matching, predicted_assets_page
from dashboard.selectors.deployments import asset_cards, display_shapes, label_map
from dashboard.views.access import deployment_for_page

VIEWS = {"grid": "Grid", "table": "Table", "details": "Details"}
PAGE_SIZE = 48


def _queue_state(request) -> dict:
    sort = request.GET.get("sort") or DEFAULT_SORT
    view = request.GET.get("view") or "grid"
    return {
        "q": request.GET.get("q", "").strip(),
        "sort": sort if sort in SORTS else DEFAULT_SORT,
        "view": view if view in VIEWS else "grid",
    }


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
    deployment, membership = deployment_for_page(request, deployment_id)
    state = _queue_state(request)
    context = {
        "deployment": deployment,
        "membership": membership,
        "state": state,
        "views": VIEWS,
        "sorts": {key: sort.label for key, sort in SORTS.items()},
        "query_help": QUERY_HELP,
        "opened_at": timezone.now().isoformat(),
        "reference_size": settings.LOUPE_OUTLIER_REFERENCE_SIZE,
        "reference": deployment.outlier_references.filter(is_active=True).defer("model").first(),
        "cards": [],
        "count": None,
        "next_cursor": None,
        "error": None,
    }
    try:
        page = predicted_assets_page(
            deployment=deployment, query=state["q"], order=state["sort"],
            cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE,
        )
        context["cards"] = asset_cards(deployment=deployment, assets=page.items)
        context["next_cursor"] = page.next_cursor
        if page.next_cursor:
            context["next_url"] = "?" + urlencode({**state, "cursor": page.next_cursor})
    except ValidationFailed as error:  # a QuerySyntaxError, or a cursor from another sort
        context["error"] = _query_error(error, state["q"])
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
    deployment, _ = deployment_for_page(request, deployment_id)
    state = _queue_state(request)
    try:
        count = predicted_assets_matching(deployment=deployment, query=state["q"]).count()
    except ValidationFailed:
        count = None
    return render(request, "reviews/queue.html#count", {"count": count, "state": state, "error": count is None})


@login_required
@require_GET
def queue_new(request, deployment_id):
    """How many assets matching the query arrived since the page was opened (polled while it is open)."""
    deployment, _ = deployment_for_page(request, deployment_id)
    state = _queue_state(request)
    try:
        opened_at = dt.datetime.fromisoformat(request.GET.get("opened_at", ""))
        new = predicted_assets_matching(deployment=deployment, query=state["q"]).filter(created_at__gt=opened_at).count()
    except (ValueError, ValidationFailed):
        new = 0
    return render(
        request, "reviews/queue.html#new",
        {"new": new, "deployment": deployment, "state_query": urlencode(state), "opened_at": request.GET.get("opened_at", "")},
    )


@login_required
@require_GET
def asset_detail(request, deployment_id, asset_id):
    deployment, membership = deployment_for_page(request, deployment_id)
    asset = get_object_or_404(
        predicted_assets_matching(deployment=deployment).prefetch_related("predictions"), pk=asset_id
    )
    labels = label_map(deployment)
    predictions = {prediction.is_shadow: prediction for prediction in asset.predictions.all()}
    card = asset_cards(deployment=deployment, assets=[asset])[0]
    shadow = predictions.get(True)
    context = {
        "deployment": deployment,
        "asset": asset,
        "card": card,
        "champion": predictions.get(False),
        "shadow": shadow,
        "shadow_shapes": display_shapes(shadow.shapes, labels=labels, min_threshold=0) if shadow else [],
        "champion_shapes": display_shapes(predictions[False].shapes, labels=labels, min_threshold=0)
        if False in predictions else [],
        "state_query": urlencode(_queue_state(request)),
    }
    return render(request, "reviews/asset_detail.html", context)
