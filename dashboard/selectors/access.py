"""Who may see what: a user reaches an organization's things only through a membership with a role."""
import threading
import time
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from dashboard.errors import Forbidden, NotFound
from dashboard.models import Deployment, Membership, Organization, Role


def membership_get(*, user: AbstractBaseUser, organization_id) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization_id=organization_id).first()


def memberships_of(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")


def deployments_visible_to(*, user: AbstractBaseUser) -> QuerySet[Deployment]:
    return Deployment.objects.filter(organization__memberships__user=user).select_related(
        "organization", "champion__model", "shadow__model"
    )


def deployment_for_member(*, user: AbstractBaseUser, deployment_id, role: str = Role.LABELER) -> tuple[Deployment, Membership]:
    """The deployment, if the user is a member of its organization with at least `role`.

    Someone outside the organization is told it does not exist, so ids do not leak what other teams have.
    """
    deployment = (
        Deployment.objects.select_related("organization", "champion__model", "shadow__model")
        .filter(pk=deployment_id)
        .first()
    )
    membership = deployment and membership_get(user=user, organization_id=deployment.organization_id)
    if deployment is None or membership is None:
        raise NotFound(f"deployment {deployment_id} not found")
    if not membership.allows(role):
        raise Forbidden(f"this needs the {Role(role).label} role; you are {Role(membership.role).label}")
    return deployment, membership


# The monitoring path answers from a per-process cache: a camera sending frames all day should not pay
# for the same deployment and membership look-ups on every frame. A change of role or label map reaches
# it within this many seconds.
MONITORING_CACHE_SECONDS = 10.0
_monitoring_cache: dict[tuple, tuple[float, Deployment | None, str | None]] = {}
_monitoring_cache_lock = threading.Lock()


def deployment_for_monitoring(*, user_id, deployment_id, role: str) -> Deployment:
    """`deployment_for_member` for the hot ingest path, by user id, with a short-lived cache."""
    key = (str(user_id), str(deployment_id))
    now = time.monotonic()
    entry = _monitoring_cache.get(key)
    if entry is None or entry[0] < now:
        deployment = Deployment.objects.filter(pk=deployment_id).first()
        membership = deployment and Membership.objects.filter(
            user_id=user_id, user__is_active=True, organization_id=deployment.organization_id
        ).first()
        if deployment is not None:
            deployment.class_ids  # noqa: B018 - read now, so that cached copies never query
        entry = (now + MONITORING_CACHE_SECONDS, deployment, membership.role if membership else None)
        with _monitoring_cache_lock:
            if len(_monitoring_cache) > 10_000:
                _monitoring_cache.clear()
            _monitoring_cache[key] = entry
    _, deployment, member_role = entry
    if deployment is None or member_role is None:
        raise NotFound(f"deployment {deployment_id} not found")
    if Role.rank(member_role) < Role.rank(role):
        raise Forbidden(f"this needs the {Role(role).label} role; you are {Role(member_role).label}")
    return deployment


def monitoring_cache_clear() -> None:
    with _monitoring_cache_lock:
        _monitoring_cache.clear()


def organization_for_member(*, user: AbstractBaseUser, organization_id, role: str = Role.LABELER) -> Organization:
    membership = membership_get(user=user, organization_id=organization_id)
    if membership is None:
        raise NotFound(f"organization {organization_id} not found")
    if not membership.allows(role):
        raise Forbidden(f"this needs the {Role(role).label} role; you are {Role(membership.role).label}")
    return membership.organization
