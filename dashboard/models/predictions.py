"""What models saw and said: a predicted asset per monitored frame, with champion and shadow predictions."""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from dashboard.models.datalake import Data
from dashboard.models.deployments import Deployment, ModelVersion


class AssetStatus(models.TextChoices):
    TO_REVIEW = "TO_REVIEW", "To review"
    REVIEWED = "REVIEWED", "Reviewed"
    SUBMITTED = "SUBMITTED", "Submitted"


class PredictedAsset(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="predicted_assets")
    data = models.ForeignKey(Data, on_delete=models.PROTECT, related_name="predicted_assets")
    oracle_prediction_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=AssetStatus.choices, default=AssetStatus.TO_REVIEW)
    timestamp = models.DateTimeField()
    latency = models.FloatField()
    # The frame's own filename and source as sent (the Data keeps the first ones it was sent with).
    filename = models.CharField(max_length=255, default="")
    source = models.CharField(max_length=100, default="serving")
    # The coordinate space the shapes were sent in (the declared size, which may differ from the image's).
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    outlier_score = models.FloatField(null=True, blank=True)
    # Denormalized from the champion's prediction at ingest, for filters that must not scan JSON.
    shape_count = models.PositiveIntegerField(default=0)
    min_score = models.FloatField(null=True, blank=True)
    max_score = models.FloatField(null=True, blank=True)
    # The shapes a reviewer settled on; the review history itself lives in the reviews app.
    reviewed_shapes = models.JSONField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # Optimistic locking: every write that changes the review bumps it.
    version = models.PositiveIntegerField(default=1)
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The worker's per-frame work (thumbnail, outlier score, stats contribution) is done: stored with the frame so
    # that a message lost with the broker is found again by the sweep. The sweep's sends are timed (one more only
    # once the last had its grace period) and counted (to give up on a frame whose work keeps failing).
    processed_at = models.DateTimeField(null=True, blank=True)
    process_sent_at = models.DateTimeField(null=True, blank=True)
    process_sends = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="asset_unique_idempotency_key",
            ),
            models.UniqueConstraint(fields=["deployment", "data", "timestamp"], name="asset_unique_frame"),
        ]
        # One index per sort of the review queue, each ending in id, the keyset's tie-breaker; a btree
        # serves both directions. The partial one serves the queue's usual state, status:to_review: labelers
        # clear the top of the queue first, so a scan of asset_by_outlier would wade through reviewed rows.
        indexes = [
            models.Index(fields=["deployment", "outlier_score", "id"], name="asset_by_outlier"),
            models.Index(
                fields=["deployment", "outlier_score", "id"],
                condition=Q(status=AssetStatus.TO_REVIEW),
                name="asset_to_review_by_outlier",
            ),
            models.Index(fields=["deployment", "timestamp", "id"], name="asset_by_time"),
            models.Index(fields=["deployment", "max_score", "id"], name="asset_by_score"),
            models.Index(fields=["deployment", "latency", "id"], name="asset_by_latency"),
            models.Index(fields=["deployment", "shape_count", "id"], name="asset_by_shapes"),
            models.Index(fields=["deployment", "created_at"], name="asset_by_arrival"),
            models.Index(fields=["deployment", "source"], name="asset_by_source"),
            # The sweep's and the queue page's question: frames whose work is not done, oldest first.
            models.Index(fields=["created_at"], condition=Q(processed_at__isnull=True), name="asset_work_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.data.filename} in {self.deployment.name}"


class Prediction(models.Model):
    """The shapes one model version returned for one predicted asset, in Loupe's shape format."""

    asset = models.ForeignKey(PredictedAsset, on_delete=models.CASCADE, related_name="predictions")
    is_shadow = models.BooleanField(default=False)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="predictions"
    )
    # [{"type": "rectangle"|"polygon"|"classification", "label_id", "score", ...geometry}]
    shapes = models.JSONField(default=list)
    latency = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["asset", "is_shadow"], name="prediction_one_per_role")]

    def __str__(self) -> str:
        return f"{'shadow' if self.is_shadow else 'champion'} prediction of {self.asset_id}"


class AssetTerm(models.Model):
    """A searchable fact about a predicted asset, such as "label:3" or "tag:night", kept at ingest.

    The query language's label and tag filters become an indexed EXISTS on this table instead of a scan of JSON.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    asset = models.ForeignKey(PredictedAsset, on_delete=models.CASCADE, related_name="terms")
    term = models.CharField(max_length=110)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["asset", "term"], name="asset_term_unique")]
        indexes = [models.Index(fields=["deployment", "term", "asset"], name="asset_term_lookup")]

    def __str__(self) -> str:
        return self.term
