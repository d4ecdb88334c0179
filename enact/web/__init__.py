"""People in the loop over HTTP: the inbox of pending inputs, flow pages and a JSON API.

``enact serve`` (or ``serve(config)``) runs it with uvicorn; ``create_app(config)``
builds the FastAPI application for another server or for tests. Needs
``pip install 'enact[web]'``. Nothing in the core imports this package.
"""

from enact.web.app import create_app
from enact.web.security import UnsafeBind, WebConfig
from enact.web.server import serve

__all__ = ["UnsafeBind", "WebConfig", "create_app", "serve"]
