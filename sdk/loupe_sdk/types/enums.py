"""Enumerations of the Loupe wire contract."""

from __future__ import annotations

from enum import Enum
from typing import Type, TypeVar, Union


class InferenceType(str, Enum):
    CLASSIFICATION = "CLASSIFICATION"
    OBJECT_DETECTION = "OBJECT_DETECTION"
    SEGMENTATION = "SEGMENTATION"


class SupportedContentType(str, Enum):
    PNG = "image/png"
    JPEG = "image/jpeg"


class PredictedAssetStatus(str, Enum):
    TO_REVIEW = "TO_REVIEW"
    REVIEWED = "REVIEWED"
    SUBMITTED = "SUBMITTED"


class ServiceMetrics(str, Enum):
    """The statistics a deployment answers, each with its monitoring service and whether it is an aggregation.

    Aggregations are read from rollups (`/stats`); the others are computed over predictions (`/predictions/stats`).
    The value is the member's name, since several members share a service.
    """

    PREDICTIONS_OUTLYING_SCORE = ("PREDICTIONS_OUTLYING_SCORE", "ae_outlier", False)
    PREDICTIONS_DATA = ("PREDICTIONS_DATA", "metrics", False)
    REVIEWS_OBJECT_DETECTION_STATS = ("REVIEWS_OBJECT_DETECTION_STATS", "object_detection", False)
    REVIEWS_CLASSIFICATION_STATS = ("REVIEWS_CLASSIFICATION_STATS", "classification", False)
    REVIEWS_LABEL_DISTRIBUTION_STATS = ("REVIEWS_LABEL_DISTRIBUTION_STATS", "label_distribution", False)
    AGGREGATED_LABEL_DISTRIBUTION = ("AGGREGATED_LABEL_DISTRIBUTION", "label_distribution", True)
    AGGREGATED_OBJECT_DETECTION_STATS = ("AGGREGATED_OBJECT_DETECTION_STATS", "object_detection", True)
    AGGREGATED_PREDICTIONS_DATA = ("AGGREGATED_PREDICTIONS_DATA", "metrics", True)
    AGGREGATED_DRIFTING_PREDICTIONS = ("AGGREGATED_DRIFTING_PREDICTIONS", "ks_drift", True)

    service: str
    is_aggregation: bool

    def __new__(cls, name: str, service: str, is_aggregation: bool) -> "ServiceMetrics":
        member = str.__new__(cls, name)
        member._value_ = name
        member.service = service
        member.is_aggregation = is_aggregation
        return member


class ContinuousTrainingTrigger(str, Enum):
    FEEDBACK_LOOP = "FEEDBACK_LOOP"
    NONE = "NONE"


class ContinuousTrainingType(str, Enum):
    EXPERIMENT = "EXPERIMENT"


class ContinuousDeploymentPolicy(str, Enum):
    DEPLOY_CHAMPION = "DEPLOY_CHAMPION"
    DEPLOY_SHADOW = "DEPLOY_SHADOW"
    DEPLOY_MANUAL = "DEPLOY_MANUAL"


E = TypeVar("E", bound=Enum)


def member_of(enum: Type[E], given: Union[E, str]) -> E:
    """The member of `enum` given as itself or as its name or value in any case; ValueError names the choices."""
    if isinstance(given, enum):
        return given
    if isinstance(given, str):
        wanted = given.strip().upper()
        for member in enum:
            if wanted in (member.name.upper(), str(member.value).upper()):
                return member
    choices = ", ".join(member.name for member in enum)
    raise ValueError(f"{given!r} is not a {enum.__name__}: use one of {choices}")
