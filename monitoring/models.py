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
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"training data of {self.deployment_id}: {self.status}"
