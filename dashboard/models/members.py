"""Invitations into an organization and the audit log of every change an admin (or a member) makes."""
from django.conf import settings
from django.db import models
from django.db.models import Q

from dashboard.models.organizations import Organization, Role


class Invitation(models.Model):
    """A one-time link that makes its holder a member with `role`; only the link token's SHA-256 digest is kept."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True)
    username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LABELER)
    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(email="") | ~Q(username=""), name="invitation_names_invitee"),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.invitee} to {self.organization} as {self.role}"

    @property
    def invitee(self) -> str:
        return self.email or self.username


class AuditEvent(models.Model):
    """Who did what to which target, and when; the actor's name is copied so the line survives their account."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_by_organization")]

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.action} {self.target}"


class LoginFailure(models.Model):
    """A failed log-in on the login page, by the username typed (lower-cased): too many of them in a while stop
    that username's tries for a while (dashboard.services.auth.login_refusal), so passwords cannot be guessed there."""

    username = models.CharField(max_length=150)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["username", "at"], name="login_failure_username_at"),
                   models.Index(fields=["at"], name="login_failure_at")]
