"""Reads for the admin's console: an organization's members with their last activity, invitations, the audit log,
and who may work on a deployment."""
from django.db.models import Max, QuerySet
from django.utils import timezone

from dashboard.models import AuditEvent, Deployment, Invitation, Membership, Organization


def members_of(*, organization: Organization) -> list[Membership]:
    """Members by username, each with `last_activity`: their last log-in or API token use, whichever is later."""
    memberships = list(
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .annotate(last_token_use=Max("user__api_tokens__last_used_at"))
        .order_by("user__username")
    )
    for membership in memberships:
        moments = [moment for moment in (membership.user.last_login, membership.last_token_use) if moment]
        membership.last_activity = max(moments) if moments else None
    return memberships


def invitations_pending(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization, accepted_at__isnull=True, revoked_at__isnull=True,
                                     expires_at__gt=timezone.now()).select_related("created_by")


def audit_events_of(*, organization: Organization, limit: int = 200, before_id: int | None = None) -> list[AuditEvent]:
    queryset = AuditEvent.objects.filter(organization=organization)
    if before_id is not None:
        queryset = queryset.filter(id__lt=before_id)
    return list(queryset.order_by("-id")[:limit])


def workers_of(*, deployment: Deployment) -> QuerySet[Membership]:
    """Everyone who may review the deployment: every member of its organization (labelers and up)."""
    return Membership.objects.filter(organization_id=deployment.organization_id, user__is_active=True) \
        .select_related("user").order_by("user__username")
