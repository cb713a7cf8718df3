"""The Ray backend of TabletopVecEnv: each env shard is a Ray actor, placed on any node of the cluster.

`TabletopVecEnv(EnvConfig(backend="ray", workers=W))` splits its scenes into W shards, as the local backend
does, but each shard is an actor (one CPU, no GPU) that Ray spreads over the nodes, and the env's process (the
learner, or the evaluator's policy) stays where it was started: start the command on the GPU machine. Shards
get the same episodes and run the same code as local workers, so results do not depend on the backend.

Ray is an optional extra (`pip install 'rl4vla[ray]'`) imported only here, and only when the backend is chosen.
"""

from __future__ import annotations

import importlib.util
import os
import sys

BACKENDS = ("local", "ray")
INSTALL = "pip install 'rl4vla[ray]'"


def check_backend(backend: str, what: str = "--env.backend") -> str:
    """The backend's name, or a ValueError naming the valid ones; for ray without Ray, a RuntimeError saying how to
    install it (checked before any work, without importing Ray)."""
    if backend not in BACKENDS:
        raise ValueError(f"{what} must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise RuntimeError(f"{what} ray needs Ray, an optional extra: {INSTALL}")
    return backend


def _ray():
    try:
        import ray
    except ImportError as e:
        raise RuntimeError(f"--env.backend ray needs Ray, an optional extra: {INSTALL}") from e
    return ray


def connect(address: str | None = None):
    """The ray module, connected: to `address` (host:port, or 'auto' for the node's running cluster); without one,
    to $RAY_ADDRESS when set, else to a new local cluster (Ray's own convention). A process already connected stays
    on its cluster."""
    ray = _ray()
    if not ray.is_initialized():
        local = address is None and not os.environ.get("RAY_ADDRESS")
        ray.init(address=address, **({"include_dashboard": False} if local else {}))
    return ray


class _ShardActor:
    """An env shard in a Ray worker process (rl4vla must be installed on every node)."""

    def __init__(self, *args):
        os.environ.setdefault("LP_NUM_THREADS", "0")  # llvmpipe renders in the calling thread: no hand-off
        from rl4vla.bench.env import _Shard

        self.shard = _Shard(*args)

    def call(self, cmd: str, args: tuple):
        return getattr(self.shard, cmd)(*args)

    def node(self) -> str:
        """The node this shard runs on (its IP address)."""
        return _ray().util.get_node_ip_address()


class RayShards:
    """W env shards as Ray actors; `call` runs one method on every shard in parallel and returns their answers
    in shard order, as the local workers do."""

    def __init__(self, sizes: list[int], image_size: int, max_steps: int, early_termination: bool,
                 pretraining_assets: bool, address: str | None = None):
        ray = self._ray = connect(address)
        cpus = ray.cluster_resources().get("CPU", 0)
        if len(sizes) > cpus:
            print(f"rl4vla: {len(sizes)} env actors need one CPU each, and the Ray cluster has {cpus:g}: the others "
                  "wait for CPUs (nodes an autoscaler adds, or fewer --env.workers)", file=sys.stderr)
        # SPREAD: one shard per node before two on any node, so shards (and the conditions they play) use the
        # whole cluster; each takes one CPU and no GPU, which stays the learner's
        actor = ray.remote(num_cpus=1, num_gpus=0)(_ShardActor).options(scheduling_strategy="SPREAD")
        self.actors = [actor.remote(n, image_size, max_steps, early_termination, pretraining_assets)
                       for n in sizes]
        self._get([a.node.remote() for a in self.actors])  # fail now if a shard cannot start

    def _get(self, refs: list) -> list:
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayError as e:
            raise RuntimeError(f"env actor failed: {e}") from e

    def call(self, cmd: str, per_shard_args: list[tuple]) -> list:
        return self._get([a.call.remote(cmd, args) for a, args in zip(self.actors, per_shard_args)])

    def nodes(self) -> list[str]:
        """The node (IP address) of each shard."""
        return self._get([a.node.remote() for a in self.actors])

    def close(self) -> None:
        actors, self.actors = self.actors, []
        if not actors or not self._ray.is_initialized():
            return
        try:
            self._ray.get([a.call.remote("close", ()) for a in actors], timeout=10)
        except Exception:
            pass
        for a in actors:
            self._ray.kill(a)
