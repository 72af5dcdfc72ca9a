"""Reads of datasets: what a member may reach, versions with their counts, and pictures of annotated images."""
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet

from dashboard.errors import NotFound
from dashboard.models import Dataset, DatasetAsset, DatasetVersion, ExportJob, Role
from dashboard.selectors.access import membership_require
from dashboard.selectors.deployments import display_shapes
from dashboard.services.deployments import PALETTE


def datasets_visible_to(*, user: AbstractBaseUser, organization_id=None) -> QuerySet[Dataset]:
    queryset = Dataset.objects.filter(organization__memberships__user=user).select_related("organization")
    if organization_id is not None:
        queryset = queryset.filter(organization_id=organization_id)
    return queryset.order_by("organization__name", "name")


def dataset_for_member(*, user: AbstractBaseUser, dataset_id, role: str = Role.LABELER) -> Dataset:
    """The dataset, if the user is a member of its organization with at least `role`; outsiders get a 404."""
    dataset = Dataset.objects.select_related("organization").filter(pk=dataset_id).first()
    membership_require(user=user, organization_id=dataset and dataset.organization_id, role=role,
                       what=f"dataset {dataset_id}")
    return dataset


def dataset_version_for_member(*, user: AbstractBaseUser, version_id, role: str = Role.LABELER) -> DatasetVersion:
    version = DatasetVersion.objects.select_related("dataset__organization").filter(pk=version_id).first()
    membership_require(user=user, organization_id=version and version.dataset.organization_id, role=role,
                       what=f"dataset version {version_id}")
    return version


def dataset_version_in(*, organization_id, version_id, field: str = "dataset_version_id") -> DatasetVersion:
    """A version of this organization, for a request naming it; another organization's is not found either."""
    version = DatasetVersion.objects.select_related("dataset").filter(
        pk=version_id, dataset__organization_id=organization_id
    ).first()
    if version is None:
        raise NotFound(f"{field}: dataset version {version_id} not found")
    return version


def versions_with_counts(queryset: QuerySet[DatasetVersion]) -> QuerySet[DatasetVersion]:
    return queryset.select_related("dataset").annotate(asset_count=Count("assets", distinct=True))


def dataset_asset_cards(*, version: DatasetVersion, offset: int = 0, limit: int = 60) -> list[dict]:
    """What asset_picture.html needs for each of the version's images from `offset` on: the asset and its
    shapes, coloured."""
    labels = {int(key): {"name": name, "color": PALETTE[int(key) % len(PALETTE)]}
              for key, name in version.labels.items()}
    assets = DatasetAsset.objects.filter(version=version).select_related("annotation").order_by("created_at", "id")
    cards = []
    for asset in assets[offset:offset + limit]:
        shapes = asset.annotation.shapes if hasattr(asset, "annotation") else []
        cards.append({"asset": asset, "shapes": display_shapes(shapes, labels=labels, min_threshold=0.0)})
    return cards


def export_jobs_of(*, version: DatasetVersion, limit: int = 5) -> list[ExportJob]:
    return list(ExportJob.objects.filter(version=version).order_by("-created_at")[:limit])
