"""Deployments, their label maps, and the models whose versions serve them as champion or shadow."""
import uuid
from functools import cached_property

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from dashboard.models.organizations import Organization


class InferenceType(models.TextChoices):
    CLASSIFICATION = "CLASSIFICATION", "Classification"
    OBJECT_DETECTION = "OBJECT_DETECTION", "Object detection"
    SEGMENTATION = "SEGMENTATION", "Segmentation"


class Model(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=32, choices=InferenceType.choices)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="model_unique_name")]

    def __str__(self) -> str:
        return self.name


class ModelRuntime(models.TextChoices):
    """What runs a version on Loupe's serving workers; blank: it runs elsewhere and Loupe only monitors it."""

    ONNX = "onnx", "ONNX (onnxruntime)"
    OPENCV = "opencv", "OpenCV / classical"
    HTTP = "http", "HTTP endpoint"


class ModelSource(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    REGISTERED = "registered", "Registered"
    EXPERIMENT = "experiment", "Produced by an experiment"


class ModelVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    runtime = models.CharField(max_length=100, blank=True, choices=ModelRuntime.choices)
    # The runtime's file (an .onnx model), content-addressed: models/<sha[:2]>/<sha256>.<ext>.
    artifact = models.FileField(max_length=200, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    artifact_size = models.PositiveBigIntegerField(default=0)
    endpoint = models.URLField(max_length=500, blank=True, help_text="Where an http version answers.")
    # How the runtime feeds the model and reads its outputs (serving.contracts), stored clean, defaults filled in.
    contract = models.JSONField(default=dict, blank=True)
    # {"1": "car", "2": "person"}: class id (as JSON key) to name.
    labels = models.JSONField(default=dict, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16, choices=ModelSource.choices, default=ModelSource.REGISTERED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Part of the key under which serving workers keep the version open: a change reloads it.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__name", "version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="model_version_unique")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version} ({self.name})"


class Deployment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="deployments")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=32, choices=InferenceType.choices)
    champion = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="champion_of"
    )
    shadow = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="shadow_of"
    )
    min_threshold = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="deployment_unique_name")]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def _label_rows(self) -> list[tuple[int, str, bool]]:
        # One query per instance for both the class ids and the retired ones (ingest needs both for every frame).
        return [(class_id, name, retired_at is not None)
                for class_id, name, retired_at in self.labels.values_list("class_id", "name", "retired_at")]

    @cached_property
    def class_ids(self) -> frozenset[int]:
        """The class ids of the label map, read once per instance (ingest checks every shape against them)."""
        return frozenset(class_id for class_id, _, _ in self._label_rows)

    @cached_property
    def retired_classes(self) -> dict[int, str]:
        """Classes kept for the predictions and reviews that use them, refused in new predictions: id -> name."""
        return {class_id: name for class_id, name, retired in self._label_rows if retired}

    def clean(self) -> None:
        for role in ("champion", "shadow"):
            version = getattr(self, role)
            if version is not None and version.model.type != self.type:
                raise ValidationError({role: f"a {version.model.type} model cannot serve a {self.type} deployment"})
            if version is not None and version.model.organization_id != self.organization_id:
                raise ValidationError({role: "the model belongs to another organization"})


class Label(models.Model):
    """One class of a deployment's label map: the id models send, its name and display colour."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="labels")
    class_id = models.IntegerField()
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#3b82f6")
    # A retired class stays in the map for what already uses it; new predictions naming it are refused.
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["class_id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "class_id"], name="label_unique_class")]

    def __str__(self) -> str:
        return f"{self.class_id}: {self.name}"
