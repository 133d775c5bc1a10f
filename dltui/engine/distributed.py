"""Data-parallel training under torchrun: the process group, each rank's shard, and the
reductions that make every rank agree on the metrics.

torchrun (or any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT) starts one `dltui run` per rank; each keeps the whole dataset in memory and
gathers its own rows, DistributedDataParallel all-reduces the gradients, and rank 0 alone
writes the run directory. Without WORLD_SIZE (or with 1) nothing here runs: a single
process has no process group, no wrapper and no extra synchronisation.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dltui.errors import EXIT_RANK_LOST, ConfigError, DltuiError

if TYPE_CHECKING:
    import torch

# a rank that stops answering ends the run after this long instead of hanging it
TIMEOUT_S = 60
SYNC_EVERY = 16  # steps between the ranks' agreement on stopping (one tiny all-reduce)


class RankLost(DltuiError):
    """Another rank died or stopped answering."""

    exit_code = EXIT_RANK_LOST

    @classmethod
    def of(cls, d: Distributed, exc: BaseException) -> RankLost:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        first = first.split("] ", 1)[-1][:120]  # gloo prefixes its source location
        return cls(
            f"a peer of rank {d.rank} (of {d.world}) died or stopped answering ({first}); "
            "the run stopped with every finished epoch on disk"
        )


def world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


@dataclass
class Distributed:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @classmethod
    def start(cls, device_name: str) -> Distributed | None:
        """Join the process group torchrun describes, or None for a single process."""
        world = world_size()
        if world <= 1:
            return None
        import torch
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
        if cuda:
            if local >= torch.cuda.device_count():
                raise ConfigError("device", f"rank {rank()} wants cuda:{local}; {torch.cuda.device_count()} GPUs here")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group(
                "nccl" if cuda else "gloo",
                timeout=datetime.timedelta(seconds=TIMEOUT_S),
                **({"device_id": device} if cuda else {}),
            )
        return cls(dist.get_rank(), dist.get_world_size(), local, device)

    @property
    def writes(self) -> bool:
        return self.rank == 0

    def shard(self, perm: torch.Tensor) -> torch.Tensor:
        """This rank's rows of an epoch's permutation: every rank the same count (the
        permutation is cut to a multiple of the world size, a few rows a different few per
        epoch), so every rank takes the same number of steps."""
        usable = len(perm) - len(perm) % self.world
        return perm[:usable][self.rank :: self.world]

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        with _collective(self):
            dist.all_reduce(t)
        return t

    def any(self, *flags: bool) -> list[bool]:
        """Whether any rank raised each flag (stop requested, loss not finite)."""
        import torch

        t = torch.tensor([float(f) for f in flags], device=self.device)
        return [bool(v) for v in self.sum_(t).tolist()]

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (live-control requests, once per epoch)."""
        import torch.distributed as dist

        box = [obj]
        with _collective(self):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_rows(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """The rows of a split evaluated as shards ``x[r::world]``, back in their order."""
        import torch
        import torch.distributed as dist

        size = -(-n // self.world)
        padded = torch.zeros((size, *part.shape[1:]), dtype=part.dtype, device=self.device)
        padded[: len(part)] = part.to(self.device)
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        with _collective(self):
            dist.all_gather(parts, padded)
        out = torch.empty((n, *part.shape[1:]), dtype=part.dtype)
        for r, p in enumerate(parts):
            rows = len(range(r, n, self.world))
            out[r :: self.world] = p[:rows].cpu()
        return out

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            with contextlib.suppress(Exception):  # a peer already gone: nothing left to close cleanly
                dist.destroy_process_group()


class _collective:
    """A failed collective (a peer died, a timeout) as one line naming this rank."""

    def __init__(self, d: Distributed):
        self.d = d

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, RuntimeError):
            return False
        raise RankLost.of(self.d, exc) from None
