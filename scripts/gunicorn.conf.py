"""Gunicorn settings for Loupe's web processes: `gunicorn --config scripts/gunicorn.conf.py dashboard.wsgi:application`.

`make run` (scripts/run.py) and bench/ingest.py use it; flags on the command line (bind, workers...) still apply.
"""
import gc
from importlib import import_module


def post_worker_init(worker):
    # Import the URL conf now (the views, and with them Celery and NumPy) rather than on the worker's first
    # request, then freeze: these objects live as long as the worker, and the collector's full passes no longer
    # walk them (about 75,000) every few hundred requests.
    from django.conf import settings

    import_module(settings.ROOT_URLCONF)
    gc.freeze()
