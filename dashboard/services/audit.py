"""The audit log's one writer: every change to members, invitations, tokens and deployments goes through here."""
from django.contrib.auth.models import AbstractBaseUser

from dashboard.models import AuditEvent, Organization


def audit_record(*, organization: Organization | None, actor: AbstractBaseUser | None, action: str, target: str,
                 details: dict | None = None) -> AuditEvent:
    """Write one line of the log, in the caller's transaction, so that a change and its record commit together."""
    actor = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor,
        actor_name=actor.get_username() if actor else "",
        action=action,
        target=target[:300],
        details=details or {},
    )
