"""Training data: datasets and their versions of annotated images, and their exports."""
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from dashboard.models.datalake import Data
from dashboard.models.deployments import InferenceType
from dashboard.models.organizations import Organization
from dashboard.models.predictions import PredictedAsset


class Dataset(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="dataset_unique_name")]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=50, help_text='e.g. "v1"')
    type = models.CharField(max_length=32, choices=InferenceType.choices)
    # {"1": "car", "2": "person"}: class id (as JSON key) to name, like a model version's.
    labels = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset__name", "created_at"]
        constraints = [models.UniqueConstraint(fields=["dataset", "version"], name="dataset_version_unique")]

    def __str__(self) -> str:
        return f"{self.dataset.name}/{self.version}"


class DatasetAsset(models.Model):
    """One image of a dataset version; the bytes live once in the datalake, shared with predicted assets."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="assets")
    data = models.ForeignKey(Data, on_delete=models.PROTECT, related_name="dataset_assets")
    filename = models.CharField(max_length=255)
    # The annotations' coordinate space.
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    source_asset = models.ForeignKey(
        PredictedAsset, null=True, blank=True, on_delete=models.SET_NULL, related_name="dataset_assets"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # A predicted asset submitted twice lands once per version, whichever submit wins.
            models.UniqueConstraint(
                fields=["version", "source_asset"],
                condition=models.Q(source_asset__isnull=False),
                name="dataset_asset_unique_source",
            ),
            # One asset per image in a version: a new annotation of the image replaces the old one.
            models.UniqueConstraint(fields=["version", "data"], name="dataset_asset_unique_data"),
        ]
        indexes = [models.Index(fields=["version", "created_at"], name="dataset_asset_by_time")]

    def __str__(self) -> str:
        return self.filename


class Annotation(models.Model):
    """The shapes of a dataset asset, in Loupe's shape format and the asset's coordinate space."""

    asset = models.OneToOneField(DatasetAsset, on_delete=models.CASCADE, related_name="annotation")
    shapes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"annotation of {self.asset_id}"


class JobStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    COMPUTING = "COMPUTING", "Computing"
    READY = "READY", "Ready"
    FAILED = "FAILED", "Failed"


class ExportFormat(models.TextChoices):
    COCO = "coco", "COCO"
    YOLO = "yolo", "YOLO"


class ExportJob(models.Model):
    """A zip of a dataset version made by a worker, for versions too large to zip inside a request."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    progress = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    message = models.CharField(max_length=500, blank=True)
    file = models.FileField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the sweep last sent a PENDING job's task again (its first message lost with the broker, say).
    resent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.format} export of {self.version_id}: {self.status}"
