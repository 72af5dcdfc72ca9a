"""Who may see what: a user reaches an organization's things only through a membership with a role.

Pages and the API ask the same questions here and get the same answers: someone outside the organization is
told the thing does not exist (NotFound, so ids do not leak what other teams have), a member without the role
is told which role it needs (Forbidden). Pages turn these into 404 and 403 pages (dashboard.middleware).
"""
import functools

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Aggregate, JSONField, OuterRef, QuerySet, Subquery
from django.db.models.functions import JSONArray

from dashboard.errors import Forbidden, NotFound
from dashboard.models import Deployment, Label, Membership, Organization, Role
from dashboard.selectors.prepared import PreparedQuery


def role_require(*, held: str, role: str) -> None:
    """The one role check: roles nest (labeler < ML lead < admin), so a higher role may do what a lower one may."""
    if Role.rank(held) < Role.rank(role):
        raise Forbidden(f"this needs the {Role(role).label} role; you are {Role(held).label}")


def membership_get(*, user: AbstractBaseUser, organization_id) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization_id=organization_id).first()


def membership_require(*, user: AbstractBaseUser, organization_id, role: str = Role.LABELER, what: str) -> Membership:
    """The user's membership of the organization, with at least `role`; `what` names the thing asked for."""
    membership = membership_get(user=user, organization_id=organization_id) if organization_id else None
    if membership is None:
        raise NotFound(f"{what} not found")
    role_require(held=membership.role, role=role)
    return membership


def memberships_of(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")


def deployments_visible_to(*, user: AbstractBaseUser) -> QuerySet[Deployment]:
    return Deployment.objects.filter(organization__memberships__user=user).select_related(
        "organization", "champion__model", "shadow__model"
    )


def deployment_for_member(*, user: AbstractBaseUser, deployment_id, role: str = Role.LABELER) -> tuple[Deployment, Membership]:
    """The deployment, if the user is a member of its organization with at least `role`."""
    deployment = (
        Deployment.objects.select_related("organization", "champion__model", "shadow__model")
        .filter(pk=deployment_id)
        .first()
    )
    membership = membership_require(user=user, organization_id=deployment and deployment.organization_id, role=role,
                                    what=f"deployment {deployment_id}")
    return deployment, membership


class _JsonRows(Aggregate):
    """A group's values as one JSON array: json_group_array on SQLite, jsonb_agg on PostgreSQL."""

    function = "JSON_GROUP_ARRAY"
    output_field = JSONField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="JSONB_AGG", **extra_context)


@functools.cache
def _deployment_with_role(related: tuple[str, ...]) -> PreparedQuery:
    def build(*, deployment_id, user_id) -> QuerySet[Deployment]:
        # No ORDER BY anywhere (one row at most each).
        member_role = Membership.objects.filter(
            organization_id=OuterRef("organization_id"), user_id=user_id, user__is_active=True
        ).order_by().values("role")[:1]
        label_rows = (Label.objects.filter(deployment_id=OuterRef("pk")).order_by().values("deployment_id")
                      .annotate(rows=_JsonRows(JSONArray("class_id", "name", "retired_at"))).values("rows"))
        return (Deployment.objects.select_related(*related)
                .annotate(member_role=Subquery(member_role), label_rows=Subquery(label_rows))
                .filter(pk=deployment_id).order_by()[:1])

    return PreparedQuery(build, deployment_id=Deployment._meta.pk, user_id=Membership._meta.get_field("user"))


def deployment_for_monitoring(*, user_id, deployment_id, role: str, related: tuple[str, ...] = ()) -> Deployment:
    """`deployment_for_member` for the hot ingest and serving paths: by user id, in one prepared query (see
    dashboard.selectors.prepared) with the member's role, the deployment's label map (which every frame's classes are
    checked against) and the `related` rows (e.g. the versions serving needs)."""
    deployment = _deployment_with_role(related).first(deployment_id=deployment_id, user_id=user_id)
    if deployment is None or deployment.member_role is None:
        raise NotFound(f"deployment {deployment_id} not found")
    role_require(held=deployment.member_role, role=role)
    # What Deployment._label_rows would read in a query of its own (a cached_property keeps its value here).
    deployment.__dict__["_label_rows"] = [(class_id, name, retired_at is not None)
                                          for class_id, name, retired_at in deployment.label_rows or []]
    return deployment


def organization_for_member(*, user: AbstractBaseUser, organization_id, role: str = Role.LABELER) -> Organization:
    return membership_require(user=user, organization_id=organization_id, role=role,
                              what=f"organization {organization_id}").organization


def membership_current(*, memberships: list[Membership], organization_id) -> Membership | None:
    """Of the user's memberships, the one whose organization they work in now: the one chosen in the top bar
    (kept in the session) while they still belong to it, else their first by organization name."""
    chosen = next((m for m in memberships if str(m.organization_id) == str(organization_id)), None)
    return chosen or (memberships[0] if memberships else None)
