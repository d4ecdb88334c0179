"""The Celery application, configured from ``ENACT_*`` variables on first use.

``celery -A enact.worker worker`` finds ``enact.worker.app``. Configuration is
read lazily (``add_defaults`` with a callable), when Celery first looks at it,
so importing this module reads no environment.

Choices, and why:

* msgpack for tasks and results (JSON accepted too); never pickle, so a message
  cannot run code.
* ``task_acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged
  only after it finishes, so the task of a worker that dies is delivered again
  to another one. Flows checkpoint as they go, so the second run resumes.
* With a Redis broker, an unacknowledged task comes back after the visibility
  timeout (``ENACT_VISIBILITY_TIMEOUT_S``, default one hour) plus at most a
  quarter of it (the sweep period). It should exceed the longest task: a flow
  that runs longer is delivered a second time, and that copy waits on the flow
  lock until the first finishes. (With RabbitMQ, redelivery is immediate.)
* ``worker_prefetch_multiplier = 1``: tasks can be long; a worker must not hoard.
* The ``threads`` pool by default: sampling models is I/O bound, and threads
  share the store's caches and connections.
"""

from __future__ import annotations

from typing import Any, Mapping

from celery import Celery

from enact import config

QUEUE = "enact"


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Celery settings for the environment ``env`` (default ``os.environ``)."""
    redis_url = config.redis_url(env=env)
    visibility = config.visibility_timeout_s(env)
    return {
        "broker_url": config.broker_url(env=env),
        "result_backend": redis_url,
        "task_serializer": "msgpack",
        "result_serializer": "msgpack",
        "accept_content": ["msgpack", "json"],
        "result_accept_content": ["msgpack", "json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {
            "visibility_timeout": visibility,
            # kombu sweeps for abandoned messages every interval x throttle
            # seconds (100 s by default); sweep at a quarter of the timeout.
            "unacked_restore_interval": max(1, min(10, int(visibility / 4))),
            "unacked_restore_throttle": 1,
        },
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "result_expires": 24 * 3600,
        "task_default_queue": QUEUE,
        "worker_pool": config.worker_pool(env),
        "worker_concurrency": config.worker_concurrency(env),
        "broker_connection_retry_on_startup": True,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "imports": ["enact.worker.tasks", *config.imports(env)],
        "timezone": "UTC",
    }


def make_app(env: Mapping[str, str] | None = None) -> Celery:
    """A Celery app configured from ``env`` when it is first used."""
    celery_app = Celery("enact", set_as_current=False)
    celery_app.add_defaults(lambda: settings(env))
    return celery_app


app = make_app()


def reconfigure(env: Mapping[str, str] | None = None, celery_app: Celery | None = None) -> None:
    """Point an app (default ``app``) at the cluster described by ``env``.

    For clients that talk to more than one cluster in one process, and for tests.
    Open broker and result connections are dropped; new ones use the new settings.
    """
    import threading

    target = celery_app or app
    target.conf.update(settings(env))
    target._local = threading.local()  # per-thread result backends
    if target._pool is not None:
        target._pool.force_close_all()
        target._pool = None
    target.amqp._producer_pool = None
