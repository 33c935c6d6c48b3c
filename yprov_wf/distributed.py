"""Distributed training: which rank this process is, and the id that every rank of one distributed
step derives the same way, without talking to the others (ranks may start seconds apart, on
different hosts that share a file system)."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, replace

from yprov_wf.recording.records import MISSING, TaskRecord

GROUP_ENV = "YPROV_WF_GROUP_ID"  # set it to make the grouping explicit (any launcher, any scheduler)


@dataclass(frozen=True)
class RankInfo:
    rank: int
    world_size: int | None  # None: a non-zero rank whose world size nobody gave (not grouped)
    local_rank: int
    group: str | None  # the same string on every rank of one distributed step; None when not distributed

    @property
    def distributed(self) -> bool:
        return self.world_size is not None and self.world_size > 1


def detect(rank: int | None = None, world_size: int | None = None) -> RankInfo:
    """Rank and world size from the arguments, else torch.distributed, else RANK / WORLD_SIZE
    (torchrun), else SLURM_PROCID / SLURM_NTASKS. A rank whose world size is given nowhere is kept as
    given, with world size None (rank 0: 1), and the run is not grouped with other ranks."""
    for name, value in (("rank", rank), ("world_size", world_size)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    env = os.environ
    dist = _torch_distributed()
    if rank is None:
        rank = dist[0] if dist else _first_int(env, "RANK", "SLURM_PROCID", default=0)
    if world_size is None:
        world_size = dist[1] if dist else _first_int(env, "WORLD_SIZE", "SLURM_NTASKS", default=None)
    local_rank = _first_int(env, "LOCAL_RANK", "SLURM_LOCALID", default=0)
    if world_size is None:  # a rank with no world size (yProv4ML's Dask example): recorded as given, not grouped
        return RankInfo(rank, 1 if rank == 0 else None, local_rank, None)
    if world_size < 1 or rank >= world_size:
        raise ValueError(f"rank {rank} is not below world_size {world_size}")
    return RankInfo(rank, world_size, local_rank, group_id() if world_size > 1 else None)


def group_id() -> str:
    """A short id shared by all ranks of one launch: from YPROV_WF_GROUP_ID, torchrun's rendezvous
    run id, SLURM's job and step ids, or (single host) the launcher's address, port and process."""
    env = os.environ
    if env.get(GROUP_ENV):
        source = f"explicit:{env[GROUP_ENV]}"
    elif env.get("TORCHELASTIC_RUN_ID", "none") not in ("", "none"):
        source = f"torchelastic:{env['TORCHELASTIC_RUN_ID']}:{env.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    elif env.get("SLURM_JOB_ID"):
        source = f"slurm:{env['SLURM_JOB_ID']}.{env.get('SLURM_STEP_ID', '0')}"
    else:
        source = f"launcher:{env.get('MASTER_ADDR', '')}:{env.get('MASTER_PORT', '')}:{os.getppid()}"
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def device_name(local_rank: int) -> str:
    """The accelerator this rank most likely uses (``cuda:<local rank>``), or ``cpu``."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return f"cuda:{local_rank % max(torch.cuda.device_count(), 1)}"
    return "cpu"


def _torch_distributed() -> tuple[int, int] | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def _first_int(env: os._Environ[str], *names: str, default: int | None) -> int | None:
    for name in names:
        raw = env.get(name, "").strip()
        if raw.isdigit():
            return int(raw)
    return default


def missing_ranks(tasks: list[TaskRecord]) -> list[TaskRecord]:
    """Placeholder task records (status ``missing``) for the ranks of each distributed step that wrote
    no bundle, so the workflow shows a dead rank instead of silently omitting it."""
    groups: dict[str, list[TaskRecord]] = {}
    for t in tasks:
        if t.attributes.get("distributedGroup"):
            groups.setdefault(str(t.attributes["distributedGroup"]), []).append(t)
    out = []
    for group, members in groups.items():
        template = members[0]
        present = {m.attributes.get("rank") for m in members}
        for rank in range(int(template.attributes.get("worldSize", 1))):
            if rank not in present:
                out.append(replace(
                    template, task_id=template.task_id.rsplit("-rank", 1)[0] + f"-rank{rank}", status=MISSING,
                    ended=None, error=f"rank {rank} of {group} wrote no bundle", params=[], inputs=[], outputs=[],
                    runs=[], host="", pid=0, attributes={**template.attributes, "rank": rank},
                ))
    return out
