"""Celery tasks of the reviews app, named after the services they call."""
from celery import shared_task

from reviews.services import campaigns


@shared_task(expires=9)
def campaigns_auto_add() -> int:
    """Beat, every 10 s: new assets matching an open auto-add campaign's query become its tasks."""
    return campaigns.campaigns_auto_add()
