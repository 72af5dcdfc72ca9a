"""The domain core's data: organizations, deployments, the datalake and predictions."""
from dashboard.models.organizations import ApiToken, Membership, Organization, Role
from dashboard.models.deployments import Deployment, InferenceType, Label, Model, ModelVersion
from dashboard.models.datalake import Data
from dashboard.models.predictions import AssetStatus, PredictedAsset, Prediction

__all__ = [
    "ApiToken",
    "AssetStatus",
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
