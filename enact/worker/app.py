"""The Celery application, configured from the process's ``Settings`` on first use.

``celery -A enact.worker worker`` finds ``enact.worker.app``. Its configuration is
built lazily (``add_defaults`` with a callable), when Celery first looks at it,
from ``enact.worker.runtime.settings()`` (read once from ``ENACT_*``), so importing
this module reads no environment.

Choices, and why:

* msgpack for tasks and results (JSON accepted too); never pickle, so a message
  cannot run code.
* Flows do not rely on the broker to recover: their task is acknowledged on
  receipt, and leases plus every worker's recovery loop put a dead worker's
  flow back to work (``enact.worker.flowstate``, ``enact.worker.recovery``).
  A duplicate delivery of a flow that runs elsewhere ends at once.
* Map and replay tasks use ``task_acks_late`` + ``task_reject_on_worker_lost``:
  acknowledged only after they finish, so the task of a worker that dies is
  delivered again (with a Redis broker, after the visibility timeout,
  ``ENACT_VISIBILITY_TIMEOUT_S``, one hour by default).
* Finite broker timeouts (``ENACT_BROKER_TIMEOUT_S``): sending a task to a
  broker that is down fails in seconds; a flow's send is retried by the
  recovery loop, so ``submit`` and ``answer`` still succeed.
* ``worker_prefetch_multiplier = 1``: tasks can be long; a worker must not hoard.
* A ``redis://`` broker uses ``enact.worker.broker``'s transport: a worker whose
  broker connection drops while it holds messages reconnects instead of exiting.
* The ``threads`` pool by default: sampling models is I/O bound, and threads
  share the store's caches and connections.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

import kombu.pools
from celery import Celery

from enact.config import Settings
from enact.worker import broker, runtime

QUEUE = "enact"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for ``settings``."""
    visibility = settings.visibility_timeout_s
    scheme = urllib.parse.urlsplit(settings.broker_url or "").scheme
    # A redis:// broker gets our channel, which survives a connection that drops
    # while it holds messages (enact.worker.broker); other brokers are Celery's.
    transport = {"broker_transport": broker.TRANSPORT} if scheme == "redis" else {}
    return {
        **transport,
        "broker_url": settings.broker_url,
        "result_backend": settings.redis_url,
        "task_serializer": "msgpack",
        "result_serializer": "msgpack",
        "accept_content": ["msgpack", "json"],
        "result_accept_content": ["msgpack", "json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_timeout": settings.broker_timeout_s,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        "broker_transport_options": {
            "visibility_timeout": visibility,
            "socket_timeout": settings.broker_timeout_s,
            "socket_connect_timeout": settings.broker_timeout_s,
            # kombu sweeps for abandoned messages every interval x throttle
            # seconds (100 s by default); sweep at a quarter of the timeout.
            "unacked_restore_interval": max(1, min(10, int(visibility / 4))),
            "unacked_restore_throttle": 1,
        },
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "redis_socket_connect_timeout": settings.broker_timeout_s,
        "result_expires": 24 * 3600,
        "task_default_queue": QUEUE,
        "worker_pool": settings.worker_pool,
        "worker_concurrency": settings.worker_concurrency,
        "broker_connection_retry_on_startup": True,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "imports": ["enact.worker.tasks", *settings.imports],
        "timezone": "UTC",
    }


def make_app(settings: Settings | None = None) -> Celery:
    """A Celery app configured, when first used, from ``settings`` (default: the process's)."""
    celery_app = Celery("enact", set_as_current=False)
    celery_app.add_defaults(lambda: celery_config(settings or runtime.settings()))
    return celery_app


app = make_app()


def reconfigure(settings: Settings | None = None, celery_app: Celery | None = None) -> Settings:
    """Point the process (and an app, default ``app``) at the cluster of ``settings``.

    ``settings`` defaults to the environment, read now. For clients that talk to
    more than one cluster in one process, and for tests. The process's store and
    Redis connections, and the app's broker and result connections, are dropped;
    new ones use the new settings.
    """
    settings = runtime.configure(settings)
    target = celery_app or app
    target.conf.update(celery_config(settings))
    target._local = threading.local()  # per-thread result backends
    if target._pool is not None:
        target._pool.force_close_all()
        target._pool = None
    target.amqp._producer_pool = None
    # kombu keeps connection and producer pools in process-wide groups keyed by
    # broker URL: drop them too, or a later cluster on the same URL would get the
    # pool just closed ("Acquire on closed pool").
    kombu.pools.reset()
    return settings
