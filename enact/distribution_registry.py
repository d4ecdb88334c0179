"""Which installed distribution (pip package) a type comes from.

Register a distribution by name (its version and files are read from the
installed metadata) or with an explicit version and directory; then a type, a
function or a file path maps to the ``DistributionKey`` that contains it.
Registration at ``enact.register`` time records the key on the class
(``type_distribution_key()``), for tools that want to pin the packages a stored
object needs. The key is information only: it is never part of a digest, so a
new release of a package reads the data of the previous one.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from typing import Any, Iterable

from enact import version
from enact.types import DistributionKey

_singleton: DistributionRegistry | None = None


def registry() -> DistributionRegistry:
    """The process-wide distribution registry."""
    global _singleton
    if _singleton is None:
        _singleton = DistributionRegistry()
    return _singleton


def _editable_source_dir(pth_file: str) -> str | None:
    """The source directory an editable install's ``.pth`` file points at, if it names one.

    Old-style editable installs put a directory in the file; new-style ones put
    an import hook (``import __editable___...``), which names no directory.
    """
    try:
        with open(pth_file, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return None
    for line in lines:
        if not line.startswith(("import ", "#")) and os.path.isdir(line):
            return os.path.abspath(line)
    return None


class DistributionRegistry:
    """Maps files and directories to the distributions registered for them."""

    def __init__(self) -> None:
        self._file_map: dict[str, DistributionKey] = {}
        self._dir_map: dict[str, DistributionKey] = {}
        self._registered: dict[str, DistributionKey] = {}

    def registered(self) -> Iterable[DistributionKey]:
        return self._registered.values()

    def is_registered(self, dist_name: str) -> bool:
        return dist_name in self._registered

    def register_distribution(
        self, dist_name: str, dist_version: str | None = None, path: str | None = None
    ) -> DistributionKey:
        """Register ``dist_name``; what is missing is read from the installed metadata.

        ``path`` is the directory holding the distribution's Python files. Without
        it, the files listed in the metadata are used (and, for an editable
        install, the source directory its ``.pth`` names). The running enact is
        always found where it was imported from. Raises
        ``importlib.metadata.PackageNotFoundError`` if the distribution is not
        installed and ``dist_version`` or ``path`` is missing.
        """
        if path is None and dist_name == version.DIST_NAME:
            path = version.DIST_PYTHON_DIR
        files: list[str] = []
        if dist_version is None or path is None:
            dist = importlib.metadata.distribution(dist_name)
            if dist_version is None:
                dist_version = dist.version
            if path is None:
                files = [os.path.abspath(str(f.locate())) for f in dist.files or ()]
        key = DistributionKey(dist_name, dist_version)
        if path is not None:
            self._dir_map[os.path.abspath(path)] = key
        for file in files:
            self._file_map[file] = key
            base = os.path.basename(file)
            if base.startswith("__editable__") and base.endswith(".pth"):
                source = _editable_source_dir(file)
                if source is not None:
                    self._dir_map[source] = key
        self._registered[dist_name] = key
        return key

    def get_path_distribution_key(self, path: str) -> DistributionKey | None:
        """The registered distribution containing the file at ``path``, if any."""
        path = os.path.abspath(path)
        key = self._file_map.get(path)
        if key is not None:
            return key
        best: tuple[int, DistributionKey | None] = (-1, None)
        for directory, dir_key in self._dir_map.items():
            if os.path.commonpath([directory, path]) == directory and len(directory) > best[0]:
                best = (len(directory), dir_key)
        return best[1]

    def get_distribution_key(self, python_obj: Any) -> DistributionKey | None:
        """The registered distribution that defines ``python_obj`` (a class, function...)."""
        try:
            file = inspect.getfile(python_obj)
        except (TypeError, OSError):  # built-ins, interactive sessions, notebooks
            return None
        return self.get_path_distribution_key(file)


def register_distribution(
    dist_name: str, dist_version: str | None = None, path: str | None = None
) -> DistributionKey:
    """Register a distribution with the process-wide registry (see ``DistributionRegistry``)."""
    return registry().register_distribution(dist_name, dist_version, path)


def get_path_distribution_key(path: str) -> DistributionKey | None:
    return registry().get_path_distribution_key(path)


def get_distribution_key(python_obj: Any) -> DistributionKey | None:
    return registry().get_distribution_key(python_obj)


def ensure_enact_registered() -> None:
    """Attribute enact's own types to the running enact (done before registering types)."""
    reg = registry()
    if not reg.is_registered(version.DIST_NAME):
        reg.register_distribution(version.DIST_NAME, version.__version__, version.DIST_PYTHON_DIR)
