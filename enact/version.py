"""The version of this enact, and where it is installed.

``__version__`` is the release of this package (not of the enact 0.4 API it
stays compatible with). ``DIST_PYTHON_DIR`` is the directory the running
``enact`` package was imported from, whatever the install method (wheel,
editable, or a checkout on ``PYTHONPATH``); the distribution registry uses it
to attribute enact's own types to the ``enact`` distribution.
"""

from __future__ import annotations

import os

DIST_NAME = "enact"
DIST_PYTHON_DIR = os.path.abspath(os.path.dirname(__file__))

__version__ = "0.5.0"
