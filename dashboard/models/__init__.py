"""The core's data: organizations, deployments and models, the datalake, predictions and datasets."""
from dashboard.models.organizations import ApiToken, Membership, Organization, Role
from dashboard.models.deployments import (
    Deployment, InferenceType, Label, Model, ModelRuntime, ModelSource, ModelVersion,
)
from dashboard.models.datalake import Data
from dashboard.models.members import AuditEvent, Invitation, LoginFailure
from dashboard.models.predictions import AssetStatus, AssetTerm, PredictedAsset, Prediction
from dashboard.models.datasets import (
    Annotation, Dataset, DatasetAsset, DatasetVersion, ExportFormat, ExportJob, JobStatus,
)

__all__ = [
    "Annotation",
    "ApiToken",
    "AssetStatus",
    "AssetTerm",
    "AuditEvent",
    "Data",
    "Dataset",
    "DatasetAsset",
    "DatasetVersion",
    "Deployment",
    "ExportFormat",
    "ExportJob",
    "InferenceType",
    "Invitation",
    "JobStatus",
    "Label",
    "LoginFailure",
    "Membership",
    "Model",
    "ModelRuntime",
    "ModelSource",
    "ModelVersion",
    "Organization",
    "PredictedAsset",
    "Prediction",
    "Role",
]
