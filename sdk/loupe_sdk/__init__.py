"""Python client for Loupe: serve and monitor a deployment's predictions, and manage deployments and their pipelines."""

# Defined before the imports below, which read it for the User-Agent.
__version__ = "0.2.0"

from loupe_sdk.campaign import ReviewCampaign, ReviewTask  # noqa: E402
from loupe_sdk.client import Client  # noqa: E402
from loupe_sdk.dataset import Dataset, DatasetVersion  # noqa: E402
from loupe_sdk.deployment import Deployment  # noqa: E402
from loupe_sdk.model import Model, ModelVersion  # noqa: E402
from loupe_sdk.predicted_asset import PredictedAsset  # noqa: E402
from loupe_sdk.project import Project  # noqa: E402
from loupe_sdk.tag import Tag  # noqa: E402
from loupe_sdk.worker import Worker  # noqa: E402

__all__ = [
    "Client",
    "ReviewCampaign",
    "ReviewTask",
    "Dataset",
    "DatasetVersion",
    "Deployment",
    "Model",
    "ModelVersion",
    "PredictedAsset",
    "Project",
    "Tag",
    "Worker",
    "__version__",
]
