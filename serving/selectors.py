"""Reads of the model registry: a member's models and versions, where each version serves, and the history of changes."""
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from dashboard.models import Deployment, Model, ModelVersion, Role
from dashboard.selectors.access import membership_require, memberships_of
from serving.models import DeploymentModelChange

HISTORY_SHOWN = 100


def models_visible_to(*, user: AbstractBaseUser, organization_id=None, name: str | None = None) -> QuerySet[Model]:
    organization_ids = [m.organization_id for m in memberships_of(user=user)]
    queryset = (
        Model.objects.filter(organization_id__in=organization_ids)
        .select_related("organization")
        .annotate(version_count=Count("versions"))
        .order_by("organization__name", "name")
    )
    if organization_id is not None:
        queryset = queryset.filter(organization_id=organization_id)
    if name:
        queryset = queryset.filter(name=name)
    return queryset


def model_for_member(*, user: AbstractBaseUser, model_id, role: str = Role.LABELER) -> tuple[Model, object]:
    """The model and the user's membership of its organization (with at least `role`)."""
    model = Model.objects.select_related("organization").filter(pk=model_id).first()
    membership = membership_require(user=user, organization_id=model and model.organization_id, role=role,
                                    what=f"model {model_id}")
    return model, membership


def model_version_for_member(*, user: AbstractBaseUser, version_id, role: str = Role.LABELER) -> tuple[ModelVersion, object]:
    version = ModelVersion.objects.select_related("model__organization", "created_by").filter(pk=version_id).first()
    membership = membership_require(user=user, organization_id=version and version.model.organization_id, role=role,
                                    what=f"model version {version_id}")
    return version, membership


def model_versions(*, model: Model) -> QuerySet[ModelVersion]:
    """A model's versions, newest first, each with how many deployments it serves as champion and as shadow."""
    return (
        model.versions.select_related("model", "created_by")
        .annotate(champion_count=Count("champion_of", distinct=True), shadow_count=Count("shadow_of", distinct=True))
        .order_by("-version")
    )


def version_deployments(*, version: ModelVersion) -> list[tuple[Deployment, str]]:
    """(deployment, "champion" | "shadow") for every deployment the version serves."""
    deployments = Deployment.objects.filter(Q(champion=version) | Q(shadow=version)).order_by("name")
    served = []
    for deployment in deployments:
        if deployment.champion_id == version.id:
            served.append((deployment, "champion"))
        if deployment.shadow_id == version.id:
            served.append((deployment, "shadow"))
    return served


def model_changes(*, deployment: Deployment | None = None, version: ModelVersion | None = None,
                  limit: int = HISTORY_SHOWN) -> list[DeploymentModelChange]:
    """The newest changes of a deployment's champion and shadow, or those that put in or took out a version."""
    queryset = DeploymentModelChange.objects.select_related("deployment", "changed_by", "previous__model", "current__model")
    if deployment is not None:
        queryset = queryset.filter(deployment=deployment)
    if version is not None:
        queryset = queryset.filter(Q(previous=version) | Q(current=version))
    return list(queryset.order_by("-changed_at", "-id")[:limit])
