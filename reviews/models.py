"""Review history (the current reviewed shapes live on the predicted asset in the core), and review campaigns."""
import uuid

from django.conf import settings
from django.db import models

from dashboard.models import Deployment, PredictedAsset


class ReviewKind(models.TextChoices):
    ACCEPT = "accept", "Accepted as shown"
    REVIEW = "review", "Reviewed"
    BULK_ACCEPT = "bulk_accept", "Bulk accepted"


class Review(models.Model):
    """One save of a reviewer's shapes: kept forever, so who changed what and from which version stays known."""

    asset = models.ForeignKey(PredictedAsset, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=ReviewKind.choices)
    shapes = models.JSONField(default=list)
    based_on_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["asset", "created_at"], name="review_by_asset")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.asset_id} on version {self.based_on_version}"


class CampaignStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    CLOSED = "CLOSED", "Closed"


class ReviewCampaign(models.Model):
    """A share of a deployment's review work: which assets, instructions, a deadline, and who does what."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="campaigns")
    description = models.TextField(blank=True)
    instructions_text = models.TextField(blank=True, help_text="Markdown, rendered without any HTML of its own.")
    instructions_file = models.FileField(max_length=200, blank=True)
    instructions_file_type = models.CharField(max_length=32, blank=True)
    end_date = models.DateField(null=True, blank=True)
    auto_add_new_assets = models.BooleanField(default=False)
    auto_close_on_completion = models.BooleanField(default=False)
    # The queue's search language: the assets it covers (added when it is made, and later ones with auto-add).
    query = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Assets created before this were looked at for auto-add.
    added_through = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.description[:60] or f"campaign of {self.deployment_id}"


class TaskStatus(models.TextChoices):
    TO_DO = "TO_DO", "To do"
    TO_REWORK = "TO_REWORK", "To rework"
    DONE = "DONE", "Done"
    SKIPPED = "SKIPPED", "Skipped"


class ReviewTask(models.Model):
    """One predicted asset of a campaign: who reviews it, where it stands, why it was skipped or sent back."""

    campaign = models.ForeignKey(ReviewCampaign, on_delete=models.CASCADE, related_name="tasks")
    asset = models.ForeignKey(PredictedAsset, on_delete=models.CASCADE, related_name="review_tasks")
    position = models.PositiveIntegerField(help_text="The campaign's order (its query's order when made).")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="review_tasks")
    # Taken from the pool until then; an expired lease goes back to the pool.
    lease_until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.TO_DO)
    skip_reason = models.CharField(max_length=500, blank=True)
    rework_comment = models.CharField(max_length=1000, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    done_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", help_text="The ML lead or admin who checked it done.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["campaign", "asset"], name="review_task_once")]
        indexes = [
            models.Index(fields=["campaign", "assignee", "status", "position"], name="review_task_by_assignee"),
            # The pool: what no one holds, in the campaign's order; and the leases, to find those that ran out.
            models.Index(fields=["campaign", "position"], name="review_task_pool",
                         condition=models.Q(assignee__isnull=True, status="TO_DO")),
            models.Index(fields=["campaign", "lease_until"], name="review_task_leases",
                         condition=models.Q(lease_until__isnull=False)),
            models.Index(fields=["campaign", "done_at"], name="review_task_done",
                         condition=models.Q(done_at__isnull=False)),
            # The campaign page's list of every task, in order, a page at a time.
            models.Index(fields=["campaign", "position"], name="review_task_order"),
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.asset_id}"


class ReviewTaskCount(models.Model):
    """How many of a campaign's tasks one holder has in one status: the progress, read without counting tasks.

    Written only by the database's triggers on ReviewTask (reviews/migrations/0003_task_counts.py), so every
    change of a task, by the ORM, in bulk SQL or by a cascade, moves the counts in the same transaction."""

    campaign = models.ForeignKey(ReviewCampaign, on_delete=models.CASCADE, related_name="task_counts")
    # The assignee's user id, 0 for the pool (no assignee): not a foreign key, so a count outlives nothing.
    holder = models.IntegerField()
    status = models.CharField(max_length=16, choices=TaskStatus.choices)
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "holder", "status"], name="review_task_count_key")]

    def __str__(self) -> str:
        return f"{self.holder} {self.status} {self.n}"
