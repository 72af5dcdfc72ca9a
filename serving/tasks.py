"""Celery tasks of serving, on the serving queues (settings.CELERY_TASK_ROUTES, LOUPE_SERVING_QUEUES): thin, taking ids."""
from celery import shared_task

from dashboard.models import PredictedAsset
from serving.services import runs


@shared_task(ignore_result=False, track_started=True, acks_late=False)
def model_version_predict(model_version_id: str, image: str | None = None, data_id: str | None = None,
                          version_key: list[str] | None = None) -> dict:
    """Run a model version on one image for a web process waiting on the answer (see runs.model_version_predict).

    Acknowledged on receipt, not after: sent with `expires`, a prediction nobody waits for any more is dropped
    rather than run again after a worker's crash.
    """
    return runs.model_version_predict(model_version_id=model_version_id, image=image, data_id=data_id,
                                     version_key=version_key)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def shadow_predict(asset_id: str) -> None:
    """The deployment's shadow on a frame its champion predicted, stored as its shadow prediction (idempotent)."""
    asset = PredictedAsset.objects.select_related("deployment__shadow__model", "data").filter(pk=asset_id).first()
    if asset is not None:
        runs.shadow_prediction_run(asset=asset)
