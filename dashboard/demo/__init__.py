"""Loupe's demo content: classical models really run on bundled sample images, as ingest payloads."""
from dashboard.demo.images import DemoImage, demo_images
from dashboard.demo.models import ClassicalModel, demo_models
from dashboard.demo.payloads import DEMO_DEPLOYMENTS, DEPLOYMENT_TYPES, demo_payloads

__all__ = ("DEMO_DEPLOYMENTS", "DEPLOYMENT_TYPES", "ClassicalModel", "DemoImage", "demo_images", "demo_models",
           "demo_payloads")
