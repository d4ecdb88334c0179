"""Running the server: check the bind address, import the registered code, start uvicorn.

The server answers requests and submits flows, so it needs the same registered
functions and types as the workers (``ENACT_IMPORTS``): an answer is checked against
the requested type, and a flow is submitted by its registered name.
"""

from __future__ import annotations

import importlib
import logging

import uvicorn

import enact.worker
from enact.config import Settings
from enact.web.app import create_app
from enact.web.security import WebConfig


def import_registered(settings: Settings) -> None:
    """Import the modules that register the cluster's functions (``ENACT_IMPORTS``)."""
    for name in settings.imports:
        importlib.import_module(name)


def serve(config: WebConfig, settings: Settings | None = None, log_level: str = "info") -> None:
    """Serve until interrupted. ``UnsafeBind`` before listening if the address needs a token."""
    config.check_bind()
    settings = enact.worker.reconfigure(settings)
    import_registered(settings)
    app = create_app(config)
    where = f"http://{config.host}:{config.port}"
    logging.getLogger("enact.web").warning(
        "enact inbox on %s (%s)", where, "token required" if config.token else "loopback, no token"
    )
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level)
