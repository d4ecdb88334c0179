"""docker-compose.yml on a real engine: build times (cold and cached), start-up, image sizes, and
the time from ``docker kill`` of a worker to its flow continuing on another one.

    python bench/bench_compose.py            # cold build (base image, wheelhouse, worker) first
    python bench/bench_compose.py --cached   # keep what the cache holds

It uses the compose tests' harness (tests/compose/harness.py): its own dockerd on a data root
in ~/.cache/enact-compose, local images built from Debian packages, host networking. The cold
build removes the local images, the wheelhouse and the engine's build cache first; the
cached build then runs the same steps again. Ratios are against the cold build, measured in
the same run. Needs root (dockerd), debootstrap and docker-compose.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.compose import harness  # noqa: E402

WORKERS = 3
STEPS, DELAY_S = 40, 0.5


def build(engine: harness.Engine, workdir: Path) -> tuple[harness.Images, harness.Cluster]:
    images = harness.Images(engine)
    images.build_all()
    cluster = harness.Cluster(engine, workdir, images)
    cluster.prepare()
    cluster.build()
    return images, cluster


def forget(engine: harness.Engine, images: harness.Images) -> None:
    """Remove what a cold build makes: local images, the wheelhouse, the build cache."""
    shutil.rmtree(images.wheelhouse, ignore_errors=True)  # named by the base's Python
    for tag in (images.worker, images.s3, images.redis, images.base):
        if tag:
            engine.docker("image", "rm", "--force", tag, check=False)
    engine.docker("image", "prune", "--force", check=False)
    engine.docker("builder", "prune", "--all", "--force", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached", action="store_true", help="skip the cold build")
    parser.add_argument("--kills", type=int, default=2, help="worker kills to time")
    args = parser.parse_args(argv)

    rows: list[tuple[str, float, str]] = []
    with harness.engine_from_env() as engine, tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        cold_total = None
        if not args.cached:
            probe = harness.Images(engine)
            probe.build_base()  # to learn the base's Python, which keys the wheelhouse
            forget(engine, probe)
            began = time.monotonic()
            images, cluster = build(engine, work / "cold")
            cold_total = time.monotonic() - began
            for name, seconds in {**images.timings, **cluster.timings}.items():
                rows.append((f"cold build: {name}", seconds, ""))
            rows.append(("cold build: total", cold_total, "1.00"))
        began = time.monotonic()
        images, cluster = build(engine, work / "cached")
        cached_total = time.monotonic() - began
        for name, seconds in {**images.timings, **cluster.timings}.items():
            rows.append((f"cached build: {name}", seconds, ""))
        ratio = f"{cached_total / cold_total:.3f}" if cold_total else ""
        rows.append(("cached build: total", cached_total, ratio))
        # A change to enact's code: only the worker's last layers are built again.
        (cluster.workdir / "context" / "enact" / "_bench_touch.py").write_text("# changed\n")
        cluster.build()
        seconds = cluster.timings["build worker"]
        ratio = f"{seconds / cold_total:.3f}" if cold_total else ""
        rows.append(("worker rebuild after a code change", seconds, ratio))

        try:
            cluster.up(WORKERS)
            rows.append((f"up -> {WORKERS} workers and services healthy",
                         cluster.timings[f"up, {WORKERS} workers healthy"], ""))
            continued = []
            for _ in range(args.kills):
                flow_id = harness.submit(cluster, "tests.worker.flows:long_flow",
                                         str(STEPS), str(DELAY_S))
                seen = harness.kill_worker_mid_flow(cluster, flow_id, DELAY_S * 4, 300)
                if seen["continued_at"] is None:
                    print(f"flow {flow_id} did not continue: {seen['lines'][-3:]}")
                    continue
                continued.append(seen["continued_at"] - seen["killed_at"])
                # Bring the cluster back to 3 healthy workers for the next kill.
                cluster.compose("up", "--detach", "--no-build", "--scale", f"worker={WORKERS}")
                cluster.wait_healthy(WORKERS)
            if continued:
                rows.append((f"docker kill -> flow continues (median of {len(continued)})",
                             statistics.median(continued), ""))
            else:
                rows.append(("docker kill -> flow continues", float("nan"), "never"))
        finally:
            cluster.down()
            rows.append(("down -v", cluster.timings["down -v"], ""))
        sizes = images.sizes()

    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure':<{width}}  {'seconds':>8}  ratio to cold build")
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds:8.1f}  {note}")
    print()
    print(f"{'image':<8}  {'MB':>7}")
    for name, size in sizes.items():
        print(f"{name:<8}  {size / 1e6:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
