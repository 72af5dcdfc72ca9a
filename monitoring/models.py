"""Monitoring's data: each asset's feature vector, the references deployments are scored against, the training data."""
import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from dashboard.models import DatasetVersion, Deployment, JobStatus, PredictedAsset


class AssetFeatures(models.Model):
    """An asset's outlier feature vector (float32 bytes), kept so that a new reference needs no image reads."""

    asset = models.OneToOneField(PredictedAsset, on_delete=models.CASCADE, primary_key=True, related_name="features")
    vector = models.BinaryField()
    version = models.PositiveSmallIntegerField(help_text="The FEATURE_VERSION the vector was computed with.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "asset features"

    def __str__(self) -> str:
        return f"features v{self.version} of {self.asset_id}"


class ReferenceSource(models.TextChoices):
    HISTORY = "history", "Deployment history"
    TRAINING = "training", "Training data"


class OutlierReference(models.Model):
    """The fitted outlier model of a deployment: what its assets' scores are relative to. Never changed once made."""

    # A UUID, never reused (SQLite reuses integer ids after a rollback): workers cache the loaded model by id.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="outlier_references")
    source = models.CharField(max_length=16, choices=ReferenceSource.choices)
    description = models.CharField(max_length=255, help_text='e.g. "first 200 predictions"')
    size = models.PositiveIntegerField(help_text="How many items the reference holds.")
    model = models.BinaryField(help_text="OutlierModel.to_bytes(): numpy arrays, no pickle.")
    method = models.CharField(max_length=200)
    feature_version = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment"], condition=Q(is_active=True), name="outlier_reference_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()}: {self.description}"


class TrainingDataReference(models.Model):
    """The dataset version a deployment's outlier scores are measured against, and how far its reference got."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="training_data")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    progress = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    message = models.CharField(max_length=500, blank=True)
    # What the training data looks like, in the stats rollups' bins (drift compares predictions with it).
    size = models.PositiveIntegerField(default=0, help_text="Images described by the histograms.")
    histograms = models.JSONField(default=dict, blank=True)
    classes = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"training data of {self.deployment_id}: {self.status}"


class RollupBucket(models.TextChoices):
    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class ModelRole(models.TextChoices):
    CHAMPION = "champion", "Champion"
    SHADOW = "shadow", "Shadow"


class StatsRollup(models.Model):
    """What a deployment's predictions of one model role, model version and tag looked like in one time bucket.

    Every figure is a sum (counts, sums, fixed-bin histograms: monitoring.histograms), so the figures of any window
    are the sums of its buckets' rows. `tag` "" is every frame; a frame with tags also counts in each tag's rows.
    `model_version_id` "" is a prediction made with no registered version.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    bucket = models.CharField(max_length=8, choices=RollupBucket.choices)
    start = models.DateTimeField()
    role = models.CharField(max_length=8, choices=ModelRole.choices)
    model_version_id = models.CharField(max_length=36, blank=True, default="")
    tag = models.CharField(max_length=100, blank=True, default="")
    count = models.IntegerField(default=0)
    latency_sum = models.FloatField(default=0.0)
    shape_count = models.IntegerField(default=0)
    outlier_count = models.IntegerField(default=0)
    outlier_sum = models.FloatField(default=0.0)
    reviewed = models.IntegerField(default=0)
    submitted = models.IntegerField(default=0)
    # {"latency": [counts...], "score": [...], ...}: one list per feature of monitoring.histograms.BINS.
    histograms = models.JSONField(default=dict)
    # {"3": 12}: shapes per class id (as JSON keys), predicted by this role / settled by reviews.
    classes = models.JSONField(default=dict)
    reviewed_classes = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "bucket", "start", "role", "model_version_id", "tag"], name="stats_rollup_key"
            ),
        ]
        indexes = [models.Index(fields=["deployment", "bucket", "tag", "role", "start"], name="stats_rollup_window")]

    def __str__(self) -> str:
        return f"{self.role} {self.bucket} {self.start:%Y-%m-%d %H:%M} of {self.deployment_id}"


class StatsContribution(models.Model):
    """What one predicted asset has added to the rollups, so that it is counted exactly once.

    A change to the asset (its features, score, review or shadow arrive) marks the row stale; counting again
    takes the old contribution away and adds the new one in the same transaction that stores it.
    """

    asset = models.OneToOneField(PredictedAsset, on_delete=models.CASCADE, primary_key=True, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    stale = models.BooleanField(default=True)
    counted = models.JSONField(null=True, blank=True, help_text="What the rollups hold of this asset; null: nothing.")

    class Meta:
        indexes = [
            models.Index(fields=["deployment"], condition=Q(stale=True), name="stats_contribution_stale"),
        ]

    def __str__(self) -> str:
        return f"stats of {self.asset_id}{' (stale)' if self.stale else ''}"


class StatsState(models.Model):
    """A deployment's counting position: every asset created before `watermark` has a contribution row."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, primary_key=True, related_name="+")
    watermark = models.DateTimeField(null=True, blank=True)
    refresh_requested = models.BooleanField(default=False)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"stats of {self.deployment_id} counted through {self.watermark}"


class DriftSettings(models.Model):
    """The window of its own history a deployment's drift is measured against when it has no training data."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, primary_key=True, related_name="+")
    reference_start = models.DateTimeField()
    reference_end = models.DateTimeField()

    def __str__(self) -> str:
        return f"drift of {self.deployment_id} against {self.reference_start}..{self.reference_end}"


class QualityReport(models.Model):
    """Quality from reviews for one selection (window, tag, model version, ids), stored so pages never evaluate.

    `fingerprint` says which reviews it covers; when they change, a worker computes it again.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    fingerprint = models.CharField(max_length=100, blank=True)
    result = models.JSONField(null=True, blank=True)
    requested = models.BooleanField(default=False)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "key"], name="quality_report_key")]

    def __str__(self) -> str:
        return f"quality of {self.deployment_id} ({self.key[:8]})"
