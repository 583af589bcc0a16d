"""Data-parallel training over processes: torch.distributed as launched by torchrun.

    torchrun --nproc_per_node N -m chromo train --config ... --dataset ... --model ...

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in each process; `World.from_env`
reads them, `init` joins the process group (NCCL on GPUs, gloo on CPUs). Without them (a plain
`chromo train`) the world is one process and nothing here does anything: every collective below is the
identity for a world of one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


class DistributedError(RuntimeError):
    """A bad launch: the message names the variable or setting to fix."""


RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    rank: int = 0          # this process, 0..size-1; rank 0 alone writes the run directory
    size: int = 1          # processes in all
    local_rank: int = 0    # this process on its machine: its GPU

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env=None) -> "World":
        """The world torchrun describes in the environment; a world of one when WORLD_SIZE is unset."""
        env = os.environ if env is None else env
        if "WORLD_SIZE" not in env:
            return cls()
        try:
            size, rank = int(env["WORLD_SIZE"]), int(env.get("RANK", "-1"))
            local = int(env.get("LOCAL_RANK", rank))
        except ValueError as e:
            raise DistributedError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({e}); launch with "
                                   "torchrun") from e
        if size < 1 or not 0 <= rank < size:
            raise DistributedError(f"RANK {env.get('RANK')} and WORLD_SIZE {size} do not describe a process "
                                   "of the world (0 <= RANK < WORLD_SIZE); launch with torchrun, which sets "
                                   "both")
        if size > 1:
            missing = [v for v in RENDEZVOUS if not env.get(v)]
            if missing:
                raise DistributedError(f"WORLD_SIZE={size} but {' and '.join(missing)} not set: the "
                                       "processes cannot meet. Launch with torchrun (it sets them), or set "
                                       "them to the address and a free port of the rank-0 machine")
        return cls(rank, size, local)


_WORLD = World()


def world() -> World:
    """The world this process belongs to (a world of one until `init`)."""
    return _WORLD


def init(w: World) -> World:
    """Join the process group of `w` (once per process): NCCL when this machine has a GPU, else gloo."""
    global _WORLD
    if w.size > 1 and not torch.distributed.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(w.local_rank)     # chromo.device() is then this process's GPU
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend, rank=w.rank, world_size=w.size)
    _WORLD = w
    return w


def shutdown() -> None:
    global _WORLD
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    _WORLD = World()


def _dev() -> torch.device:
    from chromo import device

    return device()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over the processes (in place, returned); `t` itself in a world of one."""
    if _WORLD.size > 1:
        dev = t.device
        buf = t.to(_dev())
        torch.distributed.all_reduce(buf)
        t.copy_(buf.to(dev))
    return t


def barrier() -> None:
    if _WORLD.size > 1:
        torch.distributed.barrier()


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's decision, the same in every process."""
    if _WORLD.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=_dev())
    torch.distributed.broadcast(t, 0)
    return bool(t.item())


def assert_same(name: str, value: torch.Tensor) -> None:
    """Every process holds the same `value` (e.g. a checksum of the weights): else a DistributedError
    naming `name` and the values per rank."""
    if _WORLD.size == 1:
        return
    v = value.detach().double().reshape(1).to(_dev())
    got = [torch.zeros_like(v) for _ in range(_WORLD.size)]
    torch.distributed.all_gather(got, v)
    vals = [float(g.item()) for g in got]
    if any(x != vals[0] for x in vals):
        raise DistributedError(f"{name} differs between processes: " + ", ".join(f"rank {r}: {x!r}" for r,
                                                                                 x in enumerate(vals)))


def checksum(*tensors) -> torch.Tensor:
    """One number that changes when any element of the tensors does (float64 sums of values and of
    values weighted by position)."""
    total = torch.zeros((), dtype=torch.float64)
    for t in tensors:
        f = t.detach().double().flatten().cpu()
        total += f.sum() + (f * torch.arange(1, len(f) + 1, dtype=torch.float64)).sum() * 1e-7
    return total
