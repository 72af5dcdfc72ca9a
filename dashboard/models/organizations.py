"""Organizations, who belongs to them with which role, and the API tokens members hold."""
import uuid

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    LABELER = "labeler", "Labeler"
    ML_LEAD = "ml_lead", "ML lead"
    ADMIN = "admin", "Admin"

    @classmethod
    def rank(cls, role: str) -> int:
        # Roles are nested: an admin may do what an ML lead may, who may do what a labeler may.
        return [cls.LABELER, cls.ML_LEAD, cls.ADMIN].index(role)


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LABELER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    def allows(self, role: str) -> bool:
        return Role.rank(self.role) >= Role.rank(role)


class ApiToken(models.Model):
    """A user's API token, kept only as its SHA-256 digest; the plain token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise the token.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
