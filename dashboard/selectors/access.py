"""Who may see what: a user reaches an organization's things only through a membership with a role."""
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, QuerySet, Subquery

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


def deployment_for_monitoring(*, user_id, deployment_id, role: str) -> Deployment:
    """`deployment_for_member` for the hot ingest path: by user id, the member's role read in the same query."""
    member_role = Membership.objects.filter(
        organization_id=OuterRef("organization_id"), user_id=user_id, user__is_active=True
    ).values("role")[:1]
    deployment = Deployment.objects.annotate(member_role=Subquery(member_role)).filter(pk=deployment_id).first()
    if deployment is None or deployment.member_role is None:
        raise NotFound(f"deployment {deployment_id} not found")
    if Role.rank(deployment.member_role) < Role.rank(role):
        raise Forbidden(f"this needs the {Role(role).label} role; you are {Role(deployment.member_role).label}")
    return deployment


def organization_for_member(*, user: AbstractBaseUser, organization_id, role: str = Role.LABELER) -> Organization:
    membership = membership_get(user=user, organization_id=organization_id)
    if membership is None:
        raise NotFound(f"organization {organization_id} not found")
    if not membership.allows(role):
        raise Forbidden(f"this needs the {Role(role).label} role; you are {Role(membership.role).label}")
    return membership.organization
