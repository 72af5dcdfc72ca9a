"""Serving's writes: the model registry and the champion/shadow of deployments (registry), predictions (predict)."""
from serving.services.registry import deployment_set_model

__all__ = ["deployment_set_model"]
