"""A directory of packed objects, sharded by digest prefix.

Layout under ``ROOT``::

    objects/ab/cd/<digest>    one object; its mtime is when it was last written
    types/<type name>.json    type metadata: the field types of each committed type
    pins/<name>               a pin: the digest it keeps alive (enact pin)
    quarantine/<digest>.<t>   copies found corrupt, moved aside (kept for inspection)
    trash/                    where gc moves a file for the instant before deleting it
    gc.lock                   held by a running gc or fsck repair

Every write goes to a unique temporary file in the target directory and is
renamed into place, so readers never see a partial object and two processes
writing the same digest both succeed (the rename is atomic and both files hold
identical bytes). Nothing here unpickles anything: objects are opaque bytes,
verified by ``Store`` on read.

With ``fsync`` (``ENACT_FSYNC=1``, ``Settings.fsync``) a ``put`` returns only once
its objects survive a power loss: the files are written and renamed into place,
then the new files and every directory a rename or a new shard changed are made
durable in one round: on Linux (5.8 and later) by one ``syncfs`` of the store's
filesystem, elsewhere by fsyncing them all in parallel, so the filesystem commits
them together: a batch (one flow checkpoint, say) costs about one journal commit,
not two per object. (``syncfs`` also flushes other writers' data on that
filesystem: give a busy store its own filesystem.) A power
loss during that round may leave a file under its digest name that is short: no
acknowledged record links it (the put did not return), a read finds the digest
wrong and moves the file aside, and in this mode a put checks a young file's bytes
before trusting it, so the next write of that object repairs it. A file that
replaces an older copy (the reuse horizon) is fsynced before its rename, so what
was acknowledged once is never lost.

Garbage collection (``enact.gc``) relies on two rules kept here. A ``put`` trusts
an existing file only if it was written within ``REUSE_HORIZON_S``; an older one
is written again, which refreshes its mtime (and repairs it if it rotted). And gc
deletes a file by first renaming it into ``trash/``, then checking its mtime: a
file a writer refreshed between gc's plan and the rename is put back, and a
writer that finds the file gone writes it anew. So a racing writer loses nothing.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence

from enact.backend import (
    LOCK_TTL_S,
    REUSE_HORIZON_S,
    BackendQueries,
    Copy,
    Plan,
    SweepResult,
    TypeDescriptor,
    TypeKey,
)
from enact.errors import ConfigError, ConflictError, StoreError
from enact.stores._timed import TimedObjects

log = logging.getLogger(__name__)

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_HEX = frozenset("0123456789abcdef")


def _is_digest_name(name: str) -> bool:
    return len(name) == 64 and not set(name) - _HEX


class FileBackend(BackendQueries):
    """Stores packed objects as files under ``root_dir``."""

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        fsync: bool = False,
        *,
        reuse_horizon_s: float = REUSE_HORIZON_S,
    ) -> None:
        self.root = Path(root_dir).expanduser().absolute()
        self.objects_dir = self.root / "objects"
        self.pins_dir = self.root / "pins"
        self.quarantine_dir = self.root / "quarantine"
        self.trash_dir = self.root / "trash"
        self.lock_path = self.root / "gc.lock"
        self.fsync = fsync
        self.reuse_horizon_s = reuse_horizon_s
        self._objects = str(self.objects_dir)

    @classmethod
    def from_url(cls, url: str, settings: Any = None) -> FileBackend:
        """``file:///abs/path`` or ``file:relative/path`` (relative to the working directory)."""
        parts = urllib.parse.urlsplit(url)
        path = parts.netloc + parts.path
        if parts.scheme.lower() != "file" or not path:
            raise ConfigError(f"store URL {url!r} names no directory (expected file:///path)")
        return cls(path, fsync=bool(getattr(settings, "fsync", False)))

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def path_for(self, digest: str) -> Path:
        """Where the object for ``digest`` lives."""
        _check_digest(digest, self.root)
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
        """Write each object unless a copy written within the reuse horizon exists.

        With ``fsync``, everything written is durable when this returns, and a young
        copy is trusted only if its bytes hash to its digest (a write cut short by a
        power loss is written again).
        """
        trusted_after = time.time() - self.reuse_horizon_s
        objects_dir, fsync = self._objects, self.fsync
        stat, join = os.stat, os.path.join
        todo: list[tuple[str, str, str, bytes, bool]] = []
        for digest, data in objects.items():
            _check_digest(digest, self.root)
            directory = join(objects_dir, digest[:2], digest[2:4])
            path = join(directory, digest)
            try:
                young = stat(path).st_mtime >= trusted_after
            except (FileNotFoundError, NotADirectoryError):
                todo.append((digest, directory, path, data, False))
                continue
            except OSError as exc:
                raise StoreError(f"cannot check object {digest} in {self.root}: {exc}") from exc
            # content-addressed: the same digest means the same bytes
            if young and (not fsync or _intact(path, digest)):
                continue
            todo.append((digest, directory, path, data, True))
        if fsync:
            if todo:
                self._put_durably(todo)
            return
        for digest, directory, path, data, _ in todo:
            try:
                self._write_atomic(directory, path, data)
            except OSError as exc:
                raise StoreError(f"cannot write object {digest} to {self.root}: {exc}") from exc

    def _put_durably(self, todo: list[tuple[str, str, str, bytes, bool]]) -> None:
        """Write objects so that they survive a power loss, in one round of fsyncs.

        Every temporary file is written and renamed into place, then the new files
        and every directory changed are fsynced at once (in parallel: the filesystem
        commits them together). A file that replaces an existing copy is fsynced
        before its rename too, so a crash never leaves less than that copy.
        """
        changed: set[str] = set()
        fds: list[int] = []
        temporaries: list[tuple[str, str]] = []  # (temporary name, path)
        renamed = 0
        current = todo[0][0]
        try:
            for digest, directory, path, data, _ in todo:
                current = digest
                tmp, fd = self._open_temporary(directory, changed)
                fds.append(fd)
                temporaries.append((tmp, path))
                _write_all(fd, data)
            current = f"{len(todo)} objects"
            _each(_sync, [fd for fd, item in zip(fds, todo) if item[4]])
            for tmp, path in temporaries:
                os.replace(tmp, path)
                renamed += 1
                changed.add(os.path.dirname(path))
            _sync_all([fd for fd, item in zip(fds, todo) if not item[4]], sorted(changed))
        except OSError as exc:
            for tmp, _ in temporaries[renamed:]:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
            raise StoreError(f"cannot write {current} durably to {self.root}: {exc}") from exc
        finally:
            for fd in fds:
                os.close(fd)

    def _type_path(self, type_key: TypeKey) -> Path:
        name = type_key.name
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise StoreError(f"invalid type name {name!r} for file store {self.root}")
        return self.root / "types" / f"{name}.json"

    def register_type(
        self, type_key: TypeKey, field_types: Mapping[str, TypeDescriptor | None]
    ) -> None:
        """Record the field types of a type (type metadata, by type name)."""
        body = {n: None if t is None else t.to_json() for n, t in field_types.items()}
        data = json.dumps({"type_key": type_key.as_dict(), "fields": body}, sort_keys=True)
        try:
            path = self._type_path(type_key)
            self._write_atomic(path.parent, path, data.encode())
        except OSError as exc:
            raise StoreError(f"cannot write type {type_key.name} to {self.root}: {exc}") from exc

    def get_type(self, type_key: TypeKey) -> dict[str, TypeDescriptor | None] | None:
        try:
            stored = json.loads(self._type_path(type_key).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read type {type_key.name} from {self.root}: {exc}") from exc
        return {
            n: None if t is None else TypeDescriptor.from_json(t)
            for n, t in stored["fields"].items()
        }

    def _open_temporary(self, directory: str, changed: set[str] | None = None) -> tuple[str, int]:
        """A new temporary file in ``directory``, made (with its parents) if missing.

        The directories whose entries that changed are added to ``changed``, for a
        durable write to fsync.
        """
        # A unique name (O_EXCL) in the target directory, so the rename is atomic.
        # Mode 0o666 lets the umask decide who may read, as for any open(); unlike
        # mkstemp, which would make objects readable by their writer only.
        tmp = os.path.join(directory, f".tmp-{secrets.token_hex(8)}")
        for attempt in range(3):
            try:
                return tmp, os.open(tmp, _CREATE_FLAGS, 0o666)
            except FileNotFoundError:  # a new shard, or gc removed the emptied one
                if attempt == 2:
                    raise
                _make_directory(directory, changed)
        raise AssertionError("unreachable")

    def _write_atomic(self, directory: str | Path, path: str | Path, data: bytes) -> None:
        changed: set[str] | None = set() if self.fsync else None
        tmp, fd = self._open_temporary(str(directory), changed)
        try:
            try:
                _write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        if changed is not None:
            changed.add(str(directory))
            _each(_sync, sorted(changed))

    # -- containment ----------------------------------------------------------

    def quarantine(self, damaged: Mapping[str, bytes]) -> list[str]:
        """Move files holding these damaged bytes into ``quarantine/``.

        The digest then reads as missing, so the next ``put`` of it, from any
        process, writes a good copy. A file that hashes correctly once moved (a
        writer repaired it meanwhile) is put back. Returns one line per file moved.
        """
        done = []
        for digest in damaged:
            path = self.path_for(digest)
            aside = self.quarantine_dir / f"{digest}.{int(time.time())}-{secrets.token_hex(3)}"
            try:
                self.quarantine_dir.mkdir(parents=True, exist_ok=True)
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot move damaged object %s aside: %s", path, exc)
                continue
            if hashlib.sha256(aside.read_bytes()).hexdigest() == digest:
                _restore(aside, path)  # repaired by a writer since it was read
                continue
            log.warning("moved damaged object %s to %s", digest, aside)
            done.append(f"moved damaged {path} to {aside}")
        return done

    # -- maintenance (enact.gc) ------------------------------------------------

    def inventory(self, cutoff_s: float, *, dry_run: bool = False) -> FileInventory:
        return FileInventory(self, cutoff_s)

    def pins(self) -> dict[str, str]:
        out = {}
        try:
            entries = list(os.scandir(self.pins_dir))
        except FileNotFoundError:
            return {}
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                continue
            try:
                out[entry.name] = Path(entry.path).read_text().strip()
            except FileNotFoundError:
                continue
        return out

    def set_pin(self, name: str, digest: str) -> None:
        self._write_atomic(self.pins_dir, self.pins_dir / name, f"{digest}\n".encode())

    def remove_pin(self, name: str) -> bool:
        try:
            os.unlink(self.pins_dir / name)
            return True
        except FileNotFoundError:
            return False

    def lock_maintenance(self, owner: str, ttl_s: float = LOCK_TTL_S) -> None:
        body = json.dumps(
            {"owner": owner, "host": socket.gethostname(), "expires": time.time() + ttl_s}
        ).encode()
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, _CREATE_FLAGS, 0o666)
            except FileExistsError:
                holder = _read_lock(self.lock_path)
                if holder is None:
                    continue  # released meanwhile
                if holder.get("owner") == owner:
                    self._write_atomic(self.root, self.lock_path, body)  # renew
                    return
                if float(holder.get("expires", 0)) < time.time():
                    log.warning("breaking the expired gc lock %s of %s", self.lock_path, holder)
                    try:
                        os.unlink(self.lock_path)
                    except FileNotFoundError:
                        pass
                    continue
                raise ConflictError(
                    f"another gc or fsck ({holder.get('owner')} on {holder.get('host')}) "
                    f"holds {self.lock_path} until {time.ctime(float(holder['expires']))}; "
                    "wait for it, or delete that file if it crashed"
                ) from None
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            return
        raise ConflictError(f"could not take the gc lock {self.lock_path}")

    def unlock_maintenance(self, owner: str) -> None:
        holder = _read_lock(self.lock_path)
        if holder is not None and holder.get("owner") == owner:
            try:
                os.unlink(self.lock_path)
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"FileBackend({str(self.root)!r})"


# Durable writes ---------------------------------------------------------------------

# fsyncs run in parallel so the filesystem commits them in one journal transaction.
FSYNC_THREADS = 8
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _each(fn: Callable[[Any], None], items: Sequence[Any]) -> None:
    """``fn(item)`` for every item, concurrently when there are several; raises the
    first error after all have run."""
    global _pool, _pool_pid
    if len(items) < 2:
        for item in items:
            fn(item)
        return
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked child needs its own
            _pool = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="enact-fsync")
            _pool_pid = os.getpid()
        pool = _pool
    for future in [pool.submit(fn, item) for item in items]:
        future.result()


def _syncfs_function() -> Callable[[int], int] | None:
    """Linux's ``syncfs`` where it reports write errors (kernel 5.8 and later)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        major, minor = (int(part) for part in os.uname().release.split(".")[:2])
        if (major, minor) < (5, 8):
            return None
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError, ValueError):
        return None
    return function


_syncfs = _syncfs_function()


def _sync_all(fds: Sequence[int], directories: Sequence[str]) -> None:
    """Make new files and changed directories durable: with more than one, one
    ``syncfs`` of their filesystem (one call and one journal commit, instead of
    one fsync each), else (or off Linux) fsync each, in parallel."""
    if _syncfs is None or len(fds) + len(directories) < 2 or not fds:
        _each(_sync, [*fds, *directories])
        return
    if _syncfs(fds[0]) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"syncfs: {os.strerror(code)}")


def _sync(target: int | str) -> None:
    """fsync an open file, or a directory by name (its entries: a rename, a new file
    or subdirectory)."""
    if isinstance(target, int):
        os.fsync(target)
        return
    if os.name != "posix":  # directories cannot be opened for fsync elsewhere
        return
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _intact(path: str, digest: str) -> bool:
    """Whether the file holds bytes that hash to ``digest``."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest() == digest
    except FileNotFoundError:
        return False


def _make_directory(directory: str, changed: set[str] | None) -> None:
    """Make ``directory`` and any missing parents; add the directories whose entries
    changed (the parent of each one made) to ``changed``."""
    parent = os.path.dirname(directory)
    try:
        os.mkdir(directory)
    except FileExistsError:
        return
    except FileNotFoundError:
        if parent == directory:
            raise
        _make_directory(parent, changed)
        try:
            os.mkdir(directory)
        except FileExistsError:
            return
    if changed is not None:
        changed.add(parent)


def _check_digest(digest: str, root: Path) -> None:
    if len(digest) < 8 or "/" in digest or "\\" in digest or digest.startswith("."):
        raise StoreError(f"invalid digest {digest!r} for file store {root}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_lock(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return None
    except ValueError:
        return {"owner": "?", "expires": 0}  # unreadable: treat as expired
    return value if isinstance(value, dict) else {"owner": "?", "expires": 0}


def _restore(aside: Path, path: Path) -> None:
    """Put a file moved aside back, unless a writer has written the path anew."""
    try:
        os.link(aside, path)
    except FileExistsError:
        pass
    except FileNotFoundError:  # its directory went away: recreate it
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
    os.unlink(aside)


class FileInventory(TimedObjects):
    """A snapshot of a file store's objects with their mtimes and sizes."""

    def __init__(self, backend: FileBackend, cutoff_s: float) -> None:
        self.backend = backend
        self.cutoff_s = cutoff_s
        self.objects: dict[str, tuple[float, int]] = {}  # digest -> (mtime, size)
        self.stale_temps: list[tuple[Path, int]] = []
        self.empty_dirs: list[str] = []  # shard directories left empty, deepest first
        self._problems: list[str] = []
        try:
            shards = sorted(os.scandir(backend.objects_dir), key=lambda e: e.name)
        except FileNotFoundError:
            shards = []
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                self._problems.append(f"stray file {shard.path}")
                continue
            subs = list(os.scandir(shard.path))
            for sub in subs:
                if not sub.is_dir(follow_symlinks=False):
                    self._problems.append(f"stray file {sub.path}")
                    continue
                entries = list(os.scandir(sub.path))
                if not entries:
                    self.empty_dirs.append(sub.path)
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # deleted while listing
                    name = entry.name
                    if name.startswith(".tmp-"):
                        if st.st_mtime < cutoff_s:
                            self.stale_temps.append((Path(entry.path), st.st_size))
                    elif _is_digest_name(name) and name[:2] == shard.name and (
                        name[2:4] == sub.name
                    ):
                        self.objects[name] = (st.st_mtime, st.st_size)
                    else:
                        self._problems.append(f"stray file {entry.path}")
            if not subs:
                self.empty_dirs.append(shard.path)

    def read(self, digests: Sequence[str]) -> list[bytes | None]:
        return self.backend.get(digests)

    def copies(self) -> Iterator[Copy]:
        for digest in self.objects:
            (data,) = self.backend.get([digest])
            yield Copy(digest, str(self.backend.path_for(digest)), data)

    def problems(self) -> list[str]:
        return list(self._problems)

    def sweep(self, plan: Plan, progress: Callable[[str, int], None] | None = None) -> SweepResult:
        backend = self.backend
        result = SweepResult()
        backend.trash_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(4)
        for n, digest in enumerate(plan.detail, 1):
            path = backend.path_for(digest)
            aside = backend.trash_dir / f"{digest}.{token}"
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue  # deleted by someone else
            try:
                st = os.stat(aside)
            except FileNotFoundError:
                continue
            if st.st_mtime >= self.cutoff_s:
                _restore(aside, path)  # a writer refreshed it after the plan was made
                result.kept_fresh += 1
                continue
            os.unlink(aside)
            result.deleted_objects += 1
            result.reclaimed_bytes += st.st_size
            for directory in (path.parent, path.parent.parent):
                try:
                    directory.rmdir()  # only succeeds when empty
                except OSError:
                    break
            if progress is not None and n % 1000 == 0:
                progress("sweep", n)
        for temp, size in self.stale_temps:
            try:
                os.unlink(temp)
                result.reclaimed_bytes += size
            except FileNotFoundError:
                continue
            for directory in (temp.parent, temp.parent.parent):
                try:
                    directory.rmdir()
                except OSError:
                    break
        for empty in self.empty_dirs:
            parent = os.path.dirname(empty)
            try:
                os.rmdir(empty)  # a writer that just made it makes it again
                if parent != str(backend.objects_dir):
                    os.rmdir(parent)
            except OSError:
                pass
        try:
            backend.trash_dir.rmdir()
        except OSError:
            pass
        return result

    def repair(self, damaged: Collection[str]) -> list[str]:
        return self.backend.quarantine({d: b"" for d in damaged})
