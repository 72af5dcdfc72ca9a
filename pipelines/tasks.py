"""Celery tasks of the data pipeline, each named after the service it calls: thin, taking ids."""
import socket

from celery import shared_task
from django.conf import settings

from pipelines.services import runs, training


@shared_task(acks_late=True, soft_time_limit=settings.LOUPE_TRAINING_TIME_LIMIT,
             time_limit=settings.LOUPE_TRAINING_TIME_LIMIT + 60)
def experiment_run(experiment_id: str) -> str | None:
    """Run one experiment (on the training queue); a second delivery of the message finds it claimed and does
    nothing: a run never starts twice."""
    experiment = runs.experiment_run(experiment_id=experiment_id, worker=socket.gethostname())
    return experiment.status if experiment is not None else None


@shared_task(expires=55)
def experiments_sweep() -> dict:
    """Beat, every minute: experiments whose worker died end FAILED; unqueued pending ones are queued again."""
    return training.experiments_sweep()
