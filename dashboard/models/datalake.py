"""The datalake: every image Loupe has received, stored once by content."""
import uuid

from django.db import models

from dashboard.models.organizations import Organization


class Data(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="data")
    sha256 = models.CharField(max_length=64)
    # Content-addressed: the same bytes always land at the same storage path.
    image = models.FileField(max_length=200)
    thumbnail = models.FileField(max_length=200, blank=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=32)
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    source = models.CharField(max_length=100, default="serving")
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "data"
        constraints = [models.UniqueConstraint(fields=["organization", "sha256"], name="data_unique_content")]
        indexes = [models.Index(fields=["organization", "source"]), models.Index(fields=["filename"])]

    def __str__(self) -> str:
        return self.filename
