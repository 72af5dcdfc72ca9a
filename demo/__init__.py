"""Loupe's demo content: classical models really run on bundled sample images, as ingest payloads."""
from demo.images import DemoImage, demo_images
from demo.classical import ClassicalModel, demo_models
from demo.payloads import DEMO_DEPLOYMENTS, DEPLOYMENT_TYPES, demo_payloads

__all__ = ("DEMO_DEPLOYMENTS", "DEPLOYMENT_TYPES", "ClassicalModel", "DemoImage", "demo_images", "demo_models",
           "demo_payloads")
