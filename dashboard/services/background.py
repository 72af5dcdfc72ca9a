"""Sending work to the workers without letting a broker outage change an answer already committed.

Every piece of follow-up work has a record in the database (a predicted asset's `processed_at`, a PENDING job row,
a refresh flag) that a beat sweep finds again, so a message that could not be sent is logged here, not raised.
"""
import functools
import logging

from django.db import transaction

logger = logging.getLogger(__name__)

# Kombu's default publish retries wait about a second; a broker that refuses a connection is down, and the sweep
# will send the work again, so the request does not wait longer than this for it.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def task_send(*, task, args: tuple | list = (), kwargs: dict | None = None, queue: str | None = None,
              countdown: float | None = None) -> bool:
    """Send `task` now; False (and a warning in the log) when the broker cannot take it."""
    options = {"retry_policy": PUBLISH_RETRY_POLICY}
    if queue:
        options["queue"] = queue
    if countdown:
        options["countdown"] = countdown
    try:
        task.apply_async(args=tuple(args), kwargs=kwargs or {}, **options)
    except Exception as error:  # any transport's error (redis, filesystem, amqp): the database holds the work
        logger.warning("task %s%r not sent (the broker is unavailable: %s); its sweep will send it again",
                       task.name, tuple(args), error)
        return False
    return True


def task_send_on_commit(*, task, args: tuple | list = (), kwargs: dict | None = None, queue: str | None = None,
                        countdown: float | None = None) -> None:
    """Send `task` once the current transaction commits (at once outside one), never raising for the broker."""
    transaction.on_commit(functools.partial(task_send, task=task, args=args, kwargs=kwargs, queue=queue,
                                            countdown=countdown))
