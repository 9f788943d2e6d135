"""Where a loader runs: its rank among training processes and its DataLoader worker.

Rank and world size come from the caller, else from an initialised ``torch.distributed``, else a
single process; the worker from ``torch.utils.data.get_worker_info()``. torch is imported only
here and only when asked, so the loaders' tuple logic runs without it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """One reader of an epoch: a worker of a rank. Slots number 0 .. ``count`` - 1."""

    rank: int
    world_size: int
    worker: int = 0
    num_workers: int = 1

    @property
    def index(self) -> int:
        return self.rank * self.num_workers + self.worker

    @property
    def count(self) -> int:
        return self.world_size * self.num_workers


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None and world_size is None:
        try:
            import torch.distributed as dist
        except ImportError:
            return 0, 1
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1
    if rank is None or world_size is None:
        raise ValueError("give both rank and world_size, or neither (then torch.distributed's)")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return rank, world_size


def current_slot(rank: int | None = None, world_size: int | None = None) -> Slot:
    rank, world_size = resolve_rank(rank, world_size)
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return Slot(rank, world_size)
    info = get_worker_info()
    if info is None:
        return Slot(rank, world_size)
    return Slot(rank, world_size, info.id, info.num_workers)
