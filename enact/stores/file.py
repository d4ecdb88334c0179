"""A directory of packed objects, sharded by digest prefix.

Layout: ``ROOT/objects/ab/cd/<digest>``. Every write goes to a unique temporary
file in the target directory and is renamed into place, so readers never see a
partial object and two processes writing the same digest both succeed (the rename
is atomic and both files hold identical bytes). Nothing here unpickles anything:
objects are opaque bytes, verified by ``Store`` on read.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Mapping, Sequence

from enact.errors import StoreError

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


class FileBackend:
    """Stores packed objects as files under ``root_dir``."""

    def __init__(self, root_dir: str | os.PathLike[str], fsync: bool = False) -> None:
        self.root = Path(root_dir).expanduser().absolute()
        self.objects_dir = self.root / "objects"
        self.fsync = fsync
        self._made_dirs: set[str] = set()

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def path_for(self, digest: str) -> Path:
        """Where the object for ``digest`` lives."""
        if len(digest) < 8 or "/" in digest or "\\" in digest or digest.startswith("."):
            raise StoreError(f"invalid digest {digest!r} for file store {self.root}")
        return self.objects_dir / digest[:2] / digest[2:4] / digest

    def has(self, digests: Sequence[str]) -> list[bool]:
        return [self.path_for(d).is_file() for d in digests]

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for digest in digests:
            try:
                out.append(self.path_for(digest).read_bytes())
            except FileNotFoundError:
                out.append(None)
            except OSError as exc:
                raise StoreError(f"cannot read object {digest} from {self.root}: {exc}") from exc
        return out

    def put(self, objects: Mapping[str, bytes]) -> None:
        for digest, data in objects.items():
            path = self.path_for(digest)
            if path.is_file():
                continue  # content-addressed: the same digest means the same bytes
            try:
                self._write_atomic(path, data)
            except OSError as exc:
                raise StoreError(f"cannot write object {digest} to {self.root}: {exc}") from exc

    def _write_atomic(self, path: Path, data: bytes) -> None:
        directory = str(path.parent)
        if directory not in self._made_dirs:
            os.makedirs(directory, exist_ok=True)
            self._made_dirs.add(directory)
        # A unique name (O_EXCL) in the target directory, so the rename is atomic.
        # Mode 0o666 lets the umask decide who may read, as for any open(); unlike
        # mkstemp, which would make objects readable by their writer only.
        tmp = os.path.join(directory, f".tmp-{secrets.token_hex(8)}")
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o666)
        except FileNotFoundError:  # the directory was removed since we made it
            os.makedirs(directory, exist_ok=True)
            fd = os.open(tmp, _CREATE_FLAGS, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def __repr__(self) -> str:
        return f"FileBackend({str(self.root)!r})"
