"""Reads of the reviews app: the asset after this one in the labeler's queue, what the tool needs to draw, and
review campaigns (their progress, instructions and tasks)."""
import datetime as dt
import math

import markdown
import nh3
from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.urls import reverse

from dashboard.errors import NotFound
from dashboard.models import AssetStatus, Deployment, Membership, PredictedAsset, Role
from dashboard.selectors.assets import SORTS, cursor_for, predicted_assets_page
from dashboard.selectors.deployments import asset_cards, display_shapes, label_map
from dashboard.selectors.predictions import asset_predictions
from dashboard.selectors.access import membership_require, role_require
from reviews.models import CampaignStatus, Review, ReviewCampaign, TaskStatus


def next_asset(*, deployment: Deployment, asset: PredictedAsset, query: str, order: str,
               user=None) -> PredictedAsset | None:
    """The asset after `asset` in the queue's order, read by keyset from its position.

    The position holds even once `asset` stops matching the query (say status:to_review after its review).
    """
    # The queue's own cursor format, so "next" here is exactly what the queue would show next.
    cursor = cursor_for(asset, SORTS[order])
    page = predicted_assets_page(deployment=deployment, query=query, order=order, cursor=cursor, limit=1,
                                 with_predictions=False, user=user)
    return page.items[0] if page.items else None


def asset_for_review(*, user, deployment_id, asset_id, role: str = Role.LABELER) -> PredictedAsset:
    """The asset a save writes to, with what the save needs of it and of its deployment, and the user's role in
    the deployment's organization, all in one query (the tool's save is the labeler's hottest path).

    A user who is not a member with `role`, or an asset of another deployment, is told it does not exist.
    """
    member_role = Membership.objects.filter(
        organization_id=OuterRef("deployment__organization_id"), user_id=user.pk, user__is_active=True
    ).values("role")[:1]
    asset = (PredictedAsset.objects.filter(pk=asset_id, deployment_id=deployment_id).select_related("deployment")
             .only("version", "width", "height", "deployment_id", "deployment__type", "deployment__organization_id")
             .annotate(member_role=Subquery(member_role)).first())
    if asset is None or asset.member_role is None:
        raise NotFound(f"predicted asset {asset_id} not found in deployment {deployment_id}")
    role_require(held=asset.member_role, role=role)
    return asset


def review_tool_data(*, deployment: Deployment, asset: PredictedAsset, last: Review | None) -> dict:
    """The JSON the tool starts from: the frame, the label map, champion and shadow shapes and the stored review.

    `last` is the asset's newest history row (the caller reads the history anyway), None before any review.
    """
    predictions = asset_predictions(asset)
    return {
        "asset_id": str(asset.id),
        "type": deployment.type,
        "width": asset.width,
        "height": asset.height,
        "version": asset.version,
        "status": asset.status,
        "min_threshold": deployment.min_threshold,
        "labels": [{"id": class_id, **label} for class_id, label in label_map(deployment).items()],
        "champion": predictions.champion_shapes,
        "shadow": predictions.shadow.shapes if predictions.shadow is not None else None,
        "review": None if asset.reviewed_shapes is None else {
            "shapes": asset.reviewed_shapes,
            "by": asset.reviewed_by.get_username() if asset.reviewed_by else None,
            "at": asset.reviewed_at.isoformat() if asset.reviewed_at else None,
            "kind": last.kind if last else None,
        },
        "save_url": reverse("review-save", args=[deployment.id, asset.id]),
    }


REVIEWED_STATUSES = (AssetStatus.REVIEWED, AssetStatus.SUBMITTED)


def review_cards(*, deployment: Deployment, assets, labels: dict[int, dict] | None = None) -> list[dict]:
    """The pictures of the queue and the asset page: once an asset is reviewed (or submitted) they draw the
    review's shapes, every one of them, and keep the model's under `model_card` for the labeler's toggle."""
    labels = label_map(deployment) if labels is None else labels
    cards = asset_cards(deployment=deployment, assets=assets, labels=labels)
    for card in cards:
        asset = card["asset"]
        card["model_card"] = None
        if asset.status in REVIEWED_STATUSES and asset.reviewed_shapes is not None:
            card["model_card"] = {"asset": asset, "shapes": card["shapes"]}
            card["shapes"] = display_shapes(asset.reviewed_shapes, labels=labels, min_threshold=0)
    return cards


def _shape_key(shape: dict) -> str:
    # What a person sees of a shape: its class and geometry; the model's score is not the person's to change.
    return repr(sorted((key, value) for key, value in shape.items() if key not in ("score", "id")))


def shapes_changed(*, before: list[dict], after: list[dict]) -> dict:
    """How `after` differs from `before`: shapes kept as they were, edited (moved, resized or relabelled),
    added and removed. Shapes are matched as equal first; the rest pair up as edits."""
    left = {}
    for shape in before:
        left[_shape_key(shape)] = left.get(_shape_key(shape), 0) + 1
    kept = 0
    for shape in after:
        key = _shape_key(shape)
        if left.get(key):
            left[key] -= 1
            kept += 1
    removed_or_edited = len(before) - kept
    added_or_edited = len(after) - kept
    edited = min(removed_or_edited, added_or_edited)
    return {"kept": kept, "edited": edited, "added": added_or_edited - edited, "removed": removed_or_edited - edited}


def review_history(*, asset: PredictedAsset, model_shapes: list[dict], limit: int = 50) -> list[dict]:
    """The asset's saves, newest first: who, when, what kind, and what each changed from the one before it (the
    first from the model's shapes)."""
    reviews = list(asset.reviews.select_related("reviewer")[:limit + 1])
    baseline = reviews.pop().shapes if len(reviews) > limit else model_shapes  # the save before the oldest shown
    older = list(reversed(reviews))
    rows = []
    for index, review in enumerate(older):
        previous = older[index - 1].shapes if index else baseline
        rows.append({"review": review, "count": len(review.shapes),
                     "changes": shapes_changed(before=previous, after=review.shapes)})
    return list(reversed(rows))


# Campaigns


def campaign_for_member(*, user, campaign_id, role: str = Role.LABELER) -> ReviewCampaign:
    """The campaign, if the user may reach its deployment with `role`; outsiders are told it does not exist."""
    campaign = ReviewCampaign.objects.select_related("deployment__organization").filter(pk=campaign_id).first()
    membership_require(user=user, organization_id=campaign and campaign.deployment.organization_id, role=role,
                       what=f"campaign {campaign_id}")
    return campaign


def instructions_html(campaign: ReviewCampaign) -> str:
    """The instructions' Markdown as HTML, cleaned of anything but plain formatting and links."""
    return nh3.clean(markdown.markdown(campaign.instructions_text, extensions=["sane_lists"]),
                     url_schemes={"http", "https", "mailto"})


def campaign_progress(*, campaign: ReviewCampaign, today: dt.date | None = None) -> dict:
    """Where the campaign stands: counts by status, per person, the pace of the last seven days and when it will
    finish at that pace, and whether it is overdue."""
    today = today or timezone.now().date()
    counts = {status: 0 for status in TaskStatus.values}
    people: dict = {}
    # The counts the database keeps per holder and status (ReviewTaskCount): a few rows, however many tasks.
    holders: dict = {}
    for holder, status, n in campaign.task_counts.filter(n__gt=0).values_list("holder", "status", "n"):
        counts[status] += n
        holders.setdefault(holder or None, {status: 0 for status in TaskStatus.values})[status] += n
    names = dict(get_user_model().objects.filter(pk__in=[k for k in holders if k]).values_list("pk", "username"))
    for holder, figures in holders.items():
        people[names.get(holder, "") if holder else ""] = figures
    total = sum(counts.values())
    remaining = counts[TaskStatus.TO_DO] + counts[TaskStatus.TO_REWORK]
    per_day = {}
    for row in (campaign.tasks.filter(done_at__isnull=False).annotate(day=TruncDate("done_at")).values("day")
                .annotate(n=Count("id")).order_by("day")):
        per_day[row["day"].isoformat()] = row["n"]
    week_ago = (today - dt.timedelta(days=7)).isoformat()
    pace = sum(n for day, n in per_day.items() if day > week_ago) / 7
    finish = today + dt.timedelta(days=math.ceil(remaining / pace)) if pace and remaining else (today if not remaining else None)
    return {
        "counts": counts, "total": total, "remaining": remaining,
        "done_share": (counts[TaskStatus.DONE] + counts[TaskStatus.SKIPPED]) / total if total else 0.0,
        "pace_per_day": round(pace, 2), "projected_finish": finish.isoformat() if finish else None,
        "overdue": bool(campaign.end_date and campaign.status == CampaignStatus.OPEN and remaining
                        and campaign.end_date < today),
        "late": bool(campaign.end_date and finish and finish > campaign.end_date and remaining),
        "people": [{"username": name or None, **figures} for name, figures in sorted(people.items())],
        "done_per_day": per_day,
    }


def campaign_tasks(*, campaign: ReviewCampaign, status: str | None = None, assignee=None):
    tasks = campaign.tasks.select_related("asset", "assignee", "done_by").order_by("position")
    if status:
        tasks = tasks.filter(status=status)
    if assignee is not None:
        tasks = tasks.filter(assignee__username=assignee) if isinstance(assignee, str) else tasks.filter(assignee=assignee)
    return tasks
