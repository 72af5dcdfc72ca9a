"""Loupe's Django project and domain core; loads the Celery app with Django."""
from dashboard.celery import app as celery_app

__all__ = ("celery_app",)
