"""The domain core's data: organizations, deployments, the datalake and predictions."""
from dashboard.models.organizations import ApiToken, Membership, Organization, Role
from dashboard.models.deployments import Deployment, InferenceType, Label, Model, ModelVersion
from dashboard.models.datalake import Data
from dashboard.models.predictions import AssetStatus, AssetTerm, PredictedAsset, Prediction
from dashboard.models.datasets import (  # noqa: F401  (training data)
    Annotation, Dataset, DatasetAsset, DatasetVersion, ExportFormat, ExportJob, FeedbackLoop, JobStatus,
    TrainingDataReference,
)
from dashboard.models.outliers import AssetFeatures, OutlierReference, ReferenceSource  # noqa: F401  (outlier scores)

__all__ = [
    "ApiToken",
    "AssetStatus",
    "AssetTerm",
    "Data",
    "Deployment",
    "InferenceType",
    "Label",
    "Membership",
    "Model",
    "ModelVersion",
    "Organization",
    "PredictedAsset",
    "Prediction",
    "Role",
]
