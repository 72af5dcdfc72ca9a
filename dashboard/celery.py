"""The Celery application: configured from Django settings (CELERY_*), tasks autodiscovered."""
import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("loupe")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def database_connections_check(sender=None, **_) -> None:
    """Around each task, what Django does around each request: a connection past CONN_MAX_AGE, or one that failed,
    is closed; a kept one is checked (CONN_HEALTH_CHECKS) before its next use, so a restarted database costs no
    task. Celery's own closing is off (CELERY_DB_REUSE_MAX); eager tasks run inside their caller's connection."""
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
