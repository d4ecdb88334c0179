"""The Redis broker transport, made to outlive a broker connection that drops mid-task.

kombu's Redis channel builds a new client pool from its transport's connection
(``_connparams`` reads ``transport.client``). When the broker connection drops,
Celery closes it, which sets ``transport.client`` to ``None``, and then closes its
channels, which restores the messages they hold unacknowledged (prefetched, not yet
started) through that very path: ``AttributeError: 'NoneType' object has no
attribute 'hostname'``, which Celery reports as an "Unrecoverable error" before the
worker exits. An ack that lands in the same window fails the same way.

This channel remembers the connection it was opened with and builds from it when
the transport's has gone, so the restore (or the ack) reaches Redis if Redis is
there, and fails with a connection error, which Celery handles, if it is not.
Used for ``redis://`` brokers (``enact.worker.app``).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis

TRANSPORT = "enact.worker.broker:Transport"


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self._opened_with = connection.client
        super().__init__(connection, *args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport.client is None and self._opened_with is not None:
            # Closed under us: build from the parameters this channel opened with.
            transport.client = self._opened_with
            try:
                return super()._connparams(asynchronous)
            finally:
                transport.client = None
        return super()._connparams(asynchronous)


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel
