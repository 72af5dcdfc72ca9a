"""Enumerations of the Loupe wire contract."""

from __future__ import annotations

from enum import Enum


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
