"""Gunicorn settings for Loupe's web processes: `gunicorn --config scripts/gunicorn.conf.py dashboard.wsgi:application`.

`make run` (scripts/run.py) and bench/ingest.py use it; flags on the command line (bind, workers...) still apply.
"""
import gc
from importlib import import_module

# Time limits, all here. `timeout`: a worker silent this long is killed and replaced. With the sync worker (one
# thread per process, the production example in docs/deployment.md) that bounds each request; with gthread
# (`--threads`, as `make run` does) the worker's main loop keeps its heartbeat going whatever its threads do,
# so it only catches a stuck process. Gunicorn 27 has no read timeout for HTTP/1.1: it waits 5 s at most for a
# new connection's first byte and drains an unread body for 5 s at most, but a client that trickles its headers
# or body holds a thread (or a sync worker, until `timeout`) for as long as it keeps trickling; `limit_request_*`
# bound the size of the request line and headers, not the time they take. So in production a buffering proxy
# takes the slow clients (docs/deployment.md, "In front of gunicorn").
timeout = 30
graceful_timeout = 10  # after SIGTERM, requests in flight get this long to finish
keepalive = 2  # an idle kept-alive connection waits in the worker's poller, not in a thread; closed after 2 s
# Gunicorn answers a longer request line with its own HTML 414 before Django sees it; at 8190 (its maximum without
# lifting the check) a long search reaches Loupe, whose API refuses a query string over 4096 characters with a JSON
# 414 naming the field (dashboard/api/base.py, MAX_QUERY_STRING) and whose parser a query over 1000 with a 400.
# A request line over 8190 still gets gunicorn's own HTML 414: no client of Loupe's sends one (the SDK's searches
# are bounded by the parser's 1000 characters).
limit_request_line = 8190


def post_worker_init(worker):
    # Import the URL conf now (the views, and with them Celery and NumPy) rather than on the worker's first
    # request, then freeze: these objects live as long as the worker, and the collector's full passes no longer
    # walk them (about 75,000) every few hundred requests.
    from django.conf import settings

    import_module(settings.ROOT_URLCONF)
    gc.freeze()
