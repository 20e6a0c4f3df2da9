"""One training run over several processes (``accelerate launch`` or ``torchrun``): who does what.

Why: a launcher starts the same ``ccai train`` command in every process. Without rank handling each one
would generate the same data, label it again and write the same files over the others'. So:

- generation and labelling are sharded by chunk: chunk ``i`` of a round goes to process ``i mod N`` and the
  rows come back to every process in chunk order. Chunks and per-chunk seeds are those of a one-process
  run, so the data set is the same one, made N times faster;
- files (``state.json``, data, logs, models, cards) are written by process 0 only. Work that only writes,
  or is cheap, runs there while the others wait for its result; an error there is raised in every process,
  so none is left waiting for a partner that has gone;
- the HF/TRL trainers read the launcher's environment and train data-parallel (DDP: gloo on a CPU, NCCL on
  GPUs); each process loads its own copy of the data and the sampler gives it its share of every batch.

A one-process run goes through the same code with :data:`SINGLE`, where every helper is a plain call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: global rank, number of processes, rank on this machine."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        """Wait until every process gets here (after process 0 wrote something the others read)."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


SINGLE = Ranks()


def launched() -> bool:
    """True in a process started by a launcher with more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Process 0 of a launched run, or any process that was not launched (reads the environment only)."""
    return int(os.environ.get("RANK", "0")) == 0


def one_process_of_many() -> bool:
    """``accelerate launch --cpu --num_processes N`` (N > 1) without mpirun: accelerate sets the rendezvous
    address for N processes but starts one, which then trains alone."""
    return (
        os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
        and "MASTER_ADDR" in os.environ
        and "WORLD_SIZE" not in os.environ
    )


def current(device: str) -> Ranks:
    """This process's ranks; joins the process group on first use (gloo for ``cpu``, else the accelerator's
    backend) through accelerate's ``PartialState``, the same state the HF trainers use later."""
    if not launched():
        if one_process_of_many():
            import warnings

            warnings.warn(
                "accelerate launch --cpu --num_processes N started one process: accelerate's multi-CPU mode "
                "needs mpirun. Use `accelerate launch --multi_gpu --num_processes N` (torchrun's launcher; "
                "device=cpu joins a gloo group) or `torchrun --nproc_per_node N` for N CPU processes",
                stacklevel=2,
            )
        return SINGLE
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")
    return Ranks(state.process_index, state.num_processes, state.local_process_index)


def process_device(device: str, ranks: Ranks) -> str:
    """The device this process generates on: ``cuda`` becomes ``cuda:<local rank>`` in a launched run."""
    if ranks.distributed and device == "cuda":
        return f"cuda:{ranks.local}"
    return device


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def gather(value: T, ranks: Ranks) -> list[T]:
    """Every process's ``value`` (picklable), in rank order, on every process."""
    if not ranks.distributed:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, value)
    return out


def on_main(fn: Callable[[], T], ranks: Ranks) -> T:
    """``fn()`` on process 0; every process returns its (picklable) result. If it fails there, the same
    error is raised there and a RuntimeError naming it in the others."""
    if not ranks.distributed:
        return fn()
    import torch.distributed as dist

    outcome: list[Any] = [None]
    error: BaseException | None = None
    if ranks.main:
        try:
            outcome[0] = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the others heard of it
            error = exc
            outcome[0] = ("error", _describe(exc))
    dist.broadcast_object_list(outcome, src=0)
    status, value = outcome[0]
    if error is not None:
        raise error
    if status == "error":
        raise RuntimeError(f"process 0 failed: {value}")
    return value


def map_chunks(
    chunks: Sequence[Any], fn: Callable[[Any, int], T], ranks: Ranks, start: int = 0
) -> Iterator[tuple[int, T]]:
    """``fn(chunks[i], i)`` for ``i`` from ``start`` on, round by round: in each round process ``k`` takes
    chunk ``round start + k``. Yields ``(i, result)`` in chunk order on every process.

    A failure in any process is raised in all of them at the end of that round (the others' results of the
    round are then not yielded, so a resumed run redoes the round).
    """
    for first in range(start, len(chunks), ranks.world):
        index = first + ranks.rank
        mine: Any = None
        error: BaseException | None = None
        if index < len(chunks):
            try:
                mine = fn(chunks[index], index)
            except Exception as exc:
                if not ranks.distributed:
                    raise
                error = exc
        if not ranks.distributed:
            yield index, mine
            continue
        got = gather((mine, None if error is None else _describe(error)), ranks)
        if error is not None:
            raise error
        failed = [(k, message) for k, (_, message) in enumerate(got) if message is not None]
        if failed:
            k, message = failed[0]
            raise RuntimeError(f"process {k} failed on chunk {first + k}: {message}")
        for k, (result, _) in enumerate(got):
            if first + k < len(chunks):
                yield first + k, result
