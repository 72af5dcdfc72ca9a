"""Python client for Loupe: send predictions to a deployment's monitoring and manage deployments."""

# Defined before the imports below, which read it for the User-Agent.
__version__ = "0.1.0"

from loupe_sdk.client import Client  # noqa: E402
from loupe_sdk.dataset import Dataset, DatasetVersion  # noqa: E402
from loupe_sdk.deployment import Deployment  # noqa: E402
from loupe_sdk.model import Model, ModelVersion  # noqa: E402
from loupe_sdk.predicted_asset import PredictedAsset  # noqa: E402

__all__ = ["Client", "Dataset", "DatasetVersion", "Deployment", "Model", "ModelVersion", "PredictedAsset", "__version__"]
