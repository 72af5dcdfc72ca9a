"""Running an experiment on a training worker: claim it, train with its backend, register the model version it
made, and hand that version to continuous deployment."""
import logging
import tempfile
import threading
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from pipelines.backends import TrainingCancelled, backend_for
from pipelines.models import Experiment, ExperimentStatus
from pipelines.services.deployment import experiment_deploy
from pipelines.services.training import experiment_claim, experiment_failed, experiment_finish, experiment_log

logger = logging.getLogger(__name__)


class _Heartbeat(threading.Thread):
    """Writes the running experiment's heartbeat while its backend is silent, so the sweep knows it lives."""

    def __init__(self, experiment: Experiment):
        super().__init__(daemon=True)
        self.experiment, self.stopped = experiment, threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopped.wait(settings.LOUPE_EXPERIMENT_HEARTBEAT_SECONDS):
                experiment_log(experiment=self.experiment, text="")
        finally:
            connection.close()


def experiment_run(*, experiment_id, worker: str) -> Experiment | None:
    """Run the experiment if it is still PENDING; None when another delivery claimed it (a run never repeats)."""
    experiment = experiment_claim(experiment_id=experiment_id, worker=worker)
    if experiment is None:
        return None

    def log(text: str) -> None:
        if not experiment_log(experiment=experiment, text=text):
            raise TrainingCancelled()

    heartbeat = _Heartbeat(experiment)
    heartbeat.start()
    try:
        with tempfile.TemporaryDirectory(prefix="loupe-experiment-") as workdir:
            trained = backend_for(experiment.backend).train(experiment=experiment, workdir=Path(workdir), log=log)
        from serving.services.registry import model_version_create

        base = experiment.base_model_version
        version = model_version_create(
            model=base.model, runtime=trained.runtime, labels=trained.labels, contract=trained.contract,
            artifact=trained.artifact, name=experiment.name, metrics=trained.metrics, parameters=experiment.parameters,
            description=f"Trained by experiment {experiment.name} ({experiment.get_backend_display()}).",
            source="experiment",
        )
        heartbeat.stopped.set()  # its writes would wait on the transaction below
        # SUCCEEDED and what continuous deployment did with the version are seen together, never one without the other.
        with transaction.atomic():
            if not experiment_finish(experiment=experiment, status=ExperimentStatus.SUCCEEDED,
                                     metrics=trained.metrics, model_version=version,
                                     text=f"Made model version {version.name}.\n"):
                return Experiment.objects.get(pk=experiment.pk)  # cancelled meanwhile: the version stays unused
            experiment.refresh_from_db()
            experiment_deploy(experiment=experiment, evaluation=trained.evaluation)
    except TrainingCancelled:
        pass
    except SoftTimeLimitExceeded:
        experiment_finish(experiment=experiment, status=ExperimentStatus.FAILED,
                          text=f"\nFailed: over the time limit of {settings.LOUPE_TRAINING_TIME_LIMIT} s.\n")
    except Exception as error:  # whatever went wrong, the experiment says so in its log, never stuck RUNNING
        logger.exception("experiment %s failed", experiment.pk)
        experiment_failed(experiment=experiment, error=error)
    finally:
        heartbeat.stopped.set()
    experiment.refresh_from_db()
    return experiment
