"""Monitoring's data: each asset's feature vector, the references deployments are scored against, the training data."""
import uuid

from django.conf import settings
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


class AlertKind(models.TextChoices):
    DRIFT = "drift", "Drift verdict of the latest hour"
    LATENCY_P95 = "latency_p95", "p95 latency above (ms)"
    UNDER_THRESHOLD = "under_threshold", "Share of predictions under the min threshold above (0–1)"
    MAP_BELOW = "map_below", "mAP (or accuracy) below"
    MAP_DROP = "map_drop", "mAP (or accuracy) down by Δ from its previous report"
    SILENCE = "silence", "No prediction for N minutes"


class AlertRule(models.Model):
    """A condition an ML lead watches on a deployment; the beat evaluates it every minute from stored rows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    # Milliseconds for latency, a share in [0, 1] for under_threshold, a mAP / Δ in [0, 1], minutes for silence;
    # ignored by drift (the deployment's own verdict decides).
    threshold = models.FloatField(default=0.0, validators=[MinValueValidator(0.0)])
    window_minutes = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1), MaxValueValidator(10080)],
                                                 help_text="How far back latency and score shares are read.")
    webhook_url = models.URLField(max_length=500, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # What the evaluation remembers between runs (the last quality report's value and time, for map_drop).
    memory = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at"]

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.kind in (AlertKind.UNDER_THRESHOLD, AlertKind.MAP_BELOW, AlertKind.MAP_DROP) and not (
                0.0 <= self.threshold <= 1.0):
            raise ValidationError({"threshold": "must be between 0 and 1 for this kind"})
        if self.kind in (AlertKind.LATENCY_P95, AlertKind.SILENCE, AlertKind.MAP_DROP) and self.threshold <= 0:
            raise ValidationError({"threshold": "must be above 0 for this kind"})

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.threshold:g} on {self.deployment_id}"


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class NotificationState(models.TextChoices):
    NONE = "", "No webhook"
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed (cool-down)"


class Alert(models.Model):
    """One firing of a rule, from the evaluation that found it true to the one that found it false."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.FIRING)
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500)
    # The webhook's state for each transition: firing once, resolved once.
    firing_notification = models.CharField(max_length=10, choices=NotificationState.choices, blank=True, default="")
    resolved_notification = models.CharField(max_length=10, choices=NotificationState.choices, blank=True, default="")
    notification_attempts = models.PositiveSmallIntegerField(default=0)
    notification_error = models.CharField(max_length=500, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [models.UniqueConstraint(fields=["rule"], condition=Q(status="firing"),
                                               name="alert_one_firing_per_rule")]
        indexes = [models.Index(fields=["rule", "status"])]

    def __str__(self) -> str:
        return self.message
