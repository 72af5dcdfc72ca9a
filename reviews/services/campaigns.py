"""Writes of review campaigns: making one over a query or ticked assets, sharing its tasks (by hand, round robin,
by query, or a self-serve pool with leases), following reviews, skips and rework, and closing it.

The pool hands a task out with one conditional UPDATE (unassigned, or its lease expired), so two labelers asking
at once can never get the same task: the database decides.
"""
import datetime as dt
import hashlib
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F, Max, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from dashboard.errors import ApiError, Conflict, FieldError, PayloadTooLarge, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import Deployment, Membership
from dashboard.selectors.assets import DEFAULT_SORT, SORTS, predicted_assets_matching
from dashboard.services.images import image_inspect
from reviews.models import CampaignStatus, ReviewCampaign, ReviewTask, TaskStatus

MAX_DESCRIPTION = 2000
MAX_INSTRUCTIONS = 50_000
LEASE = dt.timedelta(minutes=15)
OPEN_TASKS = (TaskStatus.TO_DO, TaskStatus.TO_REWORK)


def _instructions_file(name: str, content: bytes) -> tuple[str, str]:
    """Store an instructions file (a PDF, or a PNG/JPEG image, checked by content); its path and type."""
    limit = settings.LOUPE_MAX_INSTRUCTIONS_BYTES
    if len(content) > limit:
        raise PayloadTooLarge(f"instructions_file: {len(content):,} bytes is over the limit of {limit:,}",
                              [FieldError("instructions_file", f"over the limit of {limit:,} bytes")])
    if content.startswith(b"%PDF-"):
        kind, extension = "application/pdf", "pdf"
    else:
        try:
            facts = image_inspect(content=content, field="instructions_file")
        except ApiError:
            raise ValidationFailed.from_errors([FieldError(
                "instructions_file", "must be a PDF, PNG or JPEG file (checked by its content)")]) from None
        kind, extension = facts.content_type, facts.extension
    digest = hashlib.sha256(content).hexdigest()
    path = f"campaigns/{digest[:2]}/{digest}.{extension}"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(content))
    return path, kind


def _end_date(value, fields: Fields) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        fields.refuse("end_date", f"must be a date, YYYY-MM-DD, not {value!r}")
        return None


def campaign_create(*, deployment: Deployment, user, description="", instructions_text="",
                    instructions_file: tuple[str, bytes] | None = None, end_date=None, auto_add_new_assets=False,
                    auto_close_on_completion=False, query: str | None = None, asset_ids: Iterable | None = None,
                    order: str = DEFAULT_SORT, assignees=None) -> ReviewCampaign:
    """A new open campaign, with a task for each asset matching `query` ("" is every asset; None adds none yet) or
    each of `asset_ids`, in queue order; shared round robin among `assignees` (labelers' usernames or users) if
    given, else left in the pool."""
    fields = Fields()
    description = fields.text(description, "description", max_length=MAX_DESCRIPTION) if description else ""
    instructions_text = (fields.text(instructions_text, "instructions_text", max_length=MAX_INSTRUCTIONS)
                         if instructions_text else "")
    end_date = _end_date(end_date, fields)
    auto_add = fields.boolean(auto_add_new_assets, "auto_add_new_assets", required=False, default=False)
    auto_close = fields.boolean(auto_close_on_completion, "auto_close_on_completion", required=False, default=False)
    query = (fields.text(query, "q", max_length=1000) or "") if query else query
    fields.check()
    if auto_add and asset_ids is not None and not query:
        raise ValidationFailed.from_errors([FieldError(
            "auto_add_new_assets", "needs a query (q): new assets join when they match it")])
    stored, kind = _instructions_file(*instructions_file) if instructions_file else ("", "")
    with transaction.atomic():
        campaign = ReviewCampaign.objects.create(
            deployment=deployment, description=description, instructions_text=instructions_text,
            instructions_file=stored, instructions_file_type=kind, end_date=end_date, auto_add_new_assets=auto_add,
            auto_close_on_completion=auto_close, query=query or "", created_by=user, added_through=timezone.now())
        if asset_ids is not None or query is not None:
            campaign_add_assets(campaign=campaign, query=query if asset_ids is None else None, asset_ids=asset_ids,
                                order=order, assignees=assignees)
    return campaign


def _open(campaign: ReviewCampaign) -> None:
    if campaign.status != CampaignStatus.OPEN:
        raise Conflict("this campaign is closed: it is read-only")


def campaign_add_assets(*, campaign: ReviewCampaign, query: str | None = None, asset_ids: Iterable | None = None,
                        order: str = DEFAULT_SORT, assets=None, assignees=None) -> int:
    """Tasks for the assets matching `query` or listed in `asset_ids` that the campaign lacks; how many were added.
    With `assignees`, the new tasks are shared round robin among them as they are made (one write, not two)."""
    _open(campaign)
    people = [person.pk for person in _labelers(campaign, assignees)] if assignees else []
    if assets is None:
        assets = predicted_assets_matching(deployment=campaign.deployment, query=query or "")
        if asset_ids is not None:
            assets = assets.filter(pk__in=list(asset_ids))
    sort = SORTS[order]
    direction = "-" if sort.descending else ""
    nulls = {"nulls_last": True}
    queue_order = [F(sort.column).desc(**nulls) if sort.descending else F(sort.column).asc(**nulls), f"{direction}id"]
    new = assets.exclude(review_tasks__campaign=campaign)
    last = campaign.tasks.aggregate(last=Max("position"))["last"] or 0
    if connection.vendor == "postgresql":
        # One statement for any number of tasks, numbered in queue order by the database itself: a campaign over a
        # whole deployment is made without its ids ever leaving PostgreSQL.
        try:
            numbered, params = (new.annotate(n=Window(RowNumber(), order_by=queue_order)).values_list("pk", "n")
                                .order_by().query.sql_with_params())
        except EmptyResultSet:  # an empty list of ids selects nothing, and Django writes no SQL for it
            return 0
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO reviews_reviewtask (campaign_id, asset_id, position, status, skip_reason, rework_comment,"
                " updated_at, assignee_id) SELECT %s, s.asset, %s + s.n, 'TO_DO', '', '', now(),"
                " (%s::int[])[1 + (s.n - 1) %% greatest(cardinality(%s::int[]), 1)]"
                f" FROM ({numbered}) AS s(asset, n) ON CONFLICT DO NOTHING",
                [campaign.pk, last, people, people, *params])
            return cursor.rowcount
    ids = list(new.order_by(*queue_order).values_list("pk", flat=True))
    ReviewTask.objects.bulk_create(
        [ReviewTask(campaign=campaign, asset_id=asset_id, position=last + index,
                    assignee_id=people[(index - 1) % len(people)] if people else None)
         for index, asset_id in enumerate(ids, start=1)], batch_size=2000, ignore_conflicts=True)
    return len(ids)


def _labelers(campaign: ReviewCampaign, users) -> list:
    members = {m.user_id: m for m in Membership.objects.filter(organization_id=campaign.deployment.organization_id)
               .select_related("user")}
    found, missing = [], []
    for user in users:
        key = getattr(user, "pk", user)
        membership = next((m for m in members.values() if str(m.user_id) == str(key) or m.user.get_username() == key),
                          None)
        (found if membership else missing).append(membership.user if membership else str(key))
    if missing or not found:
        raise ValidationFailed.from_errors([FieldError(
            "assignees", f"not members of the organization: {', '.join(missing)}" if missing else "name at least one")])
    return found


def campaign_assign(*, campaign: ReviewCampaign, assignees, mode: str = "round_robin", task_ids=None,
                    query: str | None = None, only_unassigned: bool = True) -> int:
    """Give tasks to people: the ticked ones (`task_ids`), those whose asset matches `query`, else every open one;
    round robin over `assignees`, or all to the first one ("hand"). Returns how many were assigned."""
    _open(campaign)
    if mode not in ("round_robin", "hand"):
        raise ValidationFailed.from_errors([FieldError("mode", f"must be round_robin or hand, not {mode!r}")])
    people = _labelers(campaign, assignees)
    tasks = campaign.tasks.filter(status__in=OPEN_TASKS)
    if task_ids is not None:
        tasks = tasks.filter(pk__in=list(task_ids))
    if query:
        tasks = tasks.filter(asset__in=predicted_assets_matching(deployment=campaign.deployment, query=query))
    if only_unassigned and task_ids is None:
        tasks = tasks.filter(Q(assignee__isnull=True) | Q(lease_until__lt=timezone.now()))
    if mode == "hand":
        people = people[:1]
    # In one statement: the i-th selected task (in the campaign's order) goes to person i modulo their number.
    selected, params = tasks.values("pk", "position").order_by().query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH picked AS (SELECT s.id, row_number() OVER (ORDER BY s.position) - 1 AS n"
                f" FROM ({selected}) AS s(id, position)) UPDATE reviews_reviewtask SET lease_until = NULL,"
                f" assignee_id = (%s::int[])[1 + picked.n %% %s] FROM picked WHERE reviews_reviewtask.id = picked.id",
                [*params, [person.pk for person in people], len(people)])
            return cursor.rowcount
        ids = list(tasks.order_by("position").values_list("pk", flat=True))
        for person, chunk in zip(people, (ids[i::len(people)] for i in range(len(people)))):
            ReviewTask.objects.filter(pk__in=chunk).update(assignee=person, lease_until=None)
        return len(ids)


def campaign_next_task(*, campaign: ReviewCampaign, user, lease: dt.timedelta = LEASE) -> ReviewTask | None:
    """The user's next task: their own to rework, then their own to do, then one from the pool (unassigned, or its
    lease expired), taken for `lease`. None when nothing is left for them."""
    if campaign.status != CampaignStatus.OPEN:
        return None
    now = timezone.now()
    own = (campaign.tasks.filter(assignee=user, status__in=OPEN_TASKS)
           .filter(Q(lease_until__isnull=True) | Q(lease_until__gte=now))
           .order_by("-status", "position").first())  # TO_REWORK sorts after TO_DO by name: descending puts it first
    if own is not None:
        return own
    # What no one holds first (a partial index keeps it in order), then tasks whose lease ran out.
    unheld = campaign.tasks.filter(status=TaskStatus.TO_DO, assignee__isnull=True).order_by("position")
    expired = campaign.tasks.filter(status=TaskStatus.TO_DO, lease_until__lt=now).order_by("position")
    candidates = sorted([*unheld.values_list("position", "pk")[:20], *expired.values_list("position", "pk")[:20]])
    for _, candidate in candidates:
        # The claim and its condition in one statement: of two labelers racing for it, one UPDATE matches.
        claimed = ReviewTask.objects.filter(pk=candidate, status=TaskStatus.TO_DO).filter(
            Q(assignee__isnull=True) | Q(lease_until__lt=now)).update(assignee=user, lease_until=now + lease)
        if claimed:
            return ReviewTask.objects.get(pk=candidate)
    return None


def tasks_done_by_review(*, asset_ids: Iterable, user) -> int:
    """A review of an asset makes its open tasks DONE (in every open campaign); campaigns that asked to close
    themselves when complete do so."""
    asset_ids = list(asset_ids)
    now = timezone.now()
    tasks = ReviewTask.objects.filter(asset_id__in=asset_ids, status__in=OPEN_TASKS,
                                      campaign__status=CampaignStatus.OPEN)
    # Most reviews are of assets in no campaign: the UPDATE alone answers them, and only when it changed tasks
    # are their campaigns read (the rows it just wrote: done at `now` by `user`, still locked by this transaction).
    done = tasks.update(status=TaskStatus.DONE, done_by=user, done_at=now, lease_until=None)
    if done:
        _close_if_complete(set(ReviewTask.objects.filter(asset_id__in=asset_ids, status=TaskStatus.DONE, done_by=user,
                                                         done_at=now).values_list("campaign_id", flat=True)))
    return done


def _close_if_complete(campaign_ids) -> None:
    for campaign in ReviewCampaign.objects.filter(pk__in=campaign_ids, auto_close_on_completion=True):
        if not campaign.tasks.filter(status__in=OPEN_TASKS).exists():
            ReviewCampaign.objects.filter(pk=campaign.pk, status=CampaignStatus.OPEN).update(
                status=CampaignStatus.CLOSED, closed_at=timezone.now())


def task_skip(*, task: ReviewTask, user, reason) -> ReviewTask:
    _open(task.campaign)
    fields = Fields()
    reason = fields.text(reason, "reason", max_length=500, required=True)
    fields.check()
    if task.status not in OPEN_TASKS:
        raise Conflict(f"this task is {task.status}: only an open task is skipped")
    ReviewTask.objects.filter(pk=task.pk).update(status=TaskStatus.SKIPPED, skip_reason=reason, done_by=user,
                                                 done_at=timezone.now(), lease_until=None)
    _close_if_complete([task.campaign_id])
    task.refresh_from_db()
    return task


def task_rework(*, task: ReviewTask, user, comment) -> ReviewTask:
    """An ML lead or admin sends a done task back to its reviewer, saying what to fix."""
    _open(task.campaign)
    fields = Fields()
    comment = fields.text(comment, "comment", max_length=1000, required=True)
    fields.check()
    if task.status != TaskStatus.DONE:
        raise Conflict(f"this task is {task.status}: only a done task is sent back")
    ReviewTask.objects.filter(pk=task.pk).update(status=TaskStatus.TO_REWORK, rework_comment=comment,
                                                 assignee=task.done_by or task.assignee, accepted_by=None,
                                                 lease_until=None)
    task.refresh_from_db()
    return task


def task_accept(*, task: ReviewTask, user) -> ReviewTask:
    if task.status != TaskStatus.DONE:
        raise Conflict(f"this task is {task.status}: only a done task is accepted")
    ReviewTask.objects.filter(pk=task.pk).update(accepted_by=user)
    task.refresh_from_db()
    return task


def campaign_close(*, campaign: ReviewCampaign) -> ReviewCampaign:
    ReviewCampaign.objects.filter(pk=campaign.pk, status=CampaignStatus.OPEN).update(
        status=CampaignStatus.CLOSED, closed_at=timezone.now())
    campaign.refresh_from_db()
    return campaign


def campaigns_auto_add(*, now: dt.datetime | None = None) -> int:
    """Beat: new assets that match an open auto-add campaign's query become its tasks; returns how many."""
    now = now or timezone.now()
    added = 0
    for campaign in ReviewCampaign.objects.filter(status=CampaignStatus.OPEN, auto_add_new_assets=True).select_related(
            "deployment"):
        since = campaign.added_through or campaign.created_at
        # A margin behind the mark: an ingest that began before it may commit after it (tasks are added once).
        new = predicted_assets_matching(deployment=campaign.deployment, query=campaign.query).filter(
            created_at__gte=since - dt.timedelta(minutes=2), created_at__lt=now)
        added += campaign_add_assets(campaign=campaign, assets=new, order="timestamp")
        ReviewCampaign.objects.filter(pk=campaign.pk).update(added_through=now)
    return added


def labelers_of(*, deployment: Deployment):
    """The members who may review the deployment: every member of its organization."""
    return get_user_model().objects.filter(memberships__organization_id=deployment.organization_id).order_by(
        "username")

