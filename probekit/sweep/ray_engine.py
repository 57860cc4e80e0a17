"""The sweep on Ray: one model copy per worker actor, shards handed out as tasks.

Each actor is a :class:`~probekit.sweep.worker.ShardWorker` (one CPU, and one GPU when
the cluster has GPUs); an idle actor takes the next shard. Results come back to the
sweeping process, which writes the part files, so resuming works as with the local
engine. Without ``address`` a local Ray instance is started (and stopped at the end);
with one, the sweep joins that cluster, whose nodes must have probekit installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from probekit.errors import InputError, ProbekitError
from probekit.sweep.dataset import WatchSet
from probekit.sweep.options import SweepOptions
from probekit.sweep.shards import Shard
from probekit.sweep.worker import ShardResult, ShardWorker


def compute(
    options: SweepOptions,
    watch: WatchSet,
    skip: bool,
    shards: Sequence[Shard],
    *,
    address: str | None = None,
    workers: int | None = None,
) -> Iterator[ShardResult]:
    """Shards computed on Ray workers, yielded as they finish (in any order)."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        start(address=address)
    actors: list[Any] = []
    try:
        resources = ray.cluster_resources()
        on_cpu = options.device is not None and options.device.startswith("cpu")
        gpus = 1 if resources.get("GPU", 0) >= 1 and not on_cpu else 0
        capacity = int(resources.get("GPU", 0)) if gpus else int(resources.get("CPU", 1))
        count = min(workers or max(capacity, 1), len(shards))
        if count < 1:
            return
        actor = ray.remote(num_cpus=1, num_gpus=gpus)(ShardWorker)
        actors = [actor.remote(options, watch, skip) for _ in range(count)]
        yield from _dispatch(ray, actors, shards)
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()


def start(
    *,
    address: str | None = None,
    attempts: int = 3,
    **options: Any,
) -> Any:
    """``ray.init`` (joining ``address``, or a local instance), retried ``attempts`` times.

    Ray gives a new local node a fixed 30 s to come up, which a busy machine can miss;
    ``options`` go to ``ray.init`` (e.g. ``num_cpus``, ``runtime_env``). Returns the module.
    """
    ray = _import_ray()
    for attempt in range(attempts):
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **options)
            return ray
        except Exception:
            ray.shutdown()
            if attempt == attempts - 1:
                raise
    return ray


def _dispatch(ray: Any, actors: list[Any], shards: Sequence[Shard]) -> Iterator[ShardResult]:
    """Keep every actor busy with one shard; yield each result as soon as it is done."""
    queue = list(reversed(shards))
    running: dict[Any, Any] = {}
    for a in actors:
        if queue:
            running[a.compute.remote(queue.pop())] = a
    while running:
        [ready], _ = ray.wait(list(running), num_returns=1)
        a = running.pop(ready)
        if queue:
            running[a.compute.remote(queue.pop())] = a
        try:
            yield ray.get(ready)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, ProbekitError):  # say it as the local engine would
                raise cause from None
            raise


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(
            "--engine ray needs Ray: pip install 'probekit[ray]' (or pip install ray)"
        ) from None
    return ray
