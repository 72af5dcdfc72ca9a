"""Sending work to the workers without letting a broker outage change an answer already committed.

Every piece of follow-up work has a record in the database (a predicted asset's `processed_at`, a PENDING job row,
a refresh flag) that a beat sweep finds again, so a message that could not be sent is logged here, not raised.
"""
import functools
import logging

import redis
from celery import current_app
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


def task_send_once(*, task, args: tuple | list = (), kwargs: dict | None = None, key: str, ttl: float) -> bool:
    """Send `task` unless a send under `key` is outstanding: taken less than `ttl` seconds ago and not yet released
    by the task it sent (send_key_release), so at most one such message waits however many callers ask. The key
    lives in the broker's Redis; with another broker, or Redis not answering, the task is sent every time.
    False when it was due and the broker could not take it."""
    client = _broker_redis()
    if client is not None:
        try:
            if not client.set(key, 1, nx=True, px=int(ttl * 1000)):
                return True  # its message is waiting, or its task is at work and will look again before it ends
        except redis.RedisError as error:
            logger.warning("send key %s not taken (%s); sending %s anyway", key, error, task.name)
            client = None
    sent = task_send(task=task, args=args, kwargs=kwargs)
    if not sent and client is not None:
        send_key_release(key=key)  # so the next caller tries the broker again
    return sent


def send_key_hold(*, key: str, ttl: float) -> None:
    """Keep `key` taken for another `ttl` seconds (the task it sent is still at work)."""
    _key_command(lambda client: client.set(key, 1, px=int(ttl * 1000)), key)


def send_key_release(*, key: str) -> None:
    """Release `key`: the next task_send_once under it sends again. A task releases its key before its last look
    at the work, so work stored while the key was taken is seen either by that look or by a new message."""
    _key_command(lambda client: client.delete(key), key)


def _key_command(command, key: str) -> None:
    client = _broker_redis()
    if client is not None:
        try:
            command(client)
        except redis.RedisError as error:  # the key expires by itself; meanwhile callers wait at most its ttl
            logger.warning("send key %s not updated: %s", key, error)


_clients: dict[str, redis.Redis] = {}


def _broker_redis() -> redis.Redis | None:
    """A client of the broker's Redis (one per process and URL; redis-py reconnects after a fork), or None when the
    broker is not Redis."""
    url = current_app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    return _clients[url]
