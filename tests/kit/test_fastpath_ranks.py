"""The fast path under torchrun: rank 0 decides and every rank takes its decision, on two gloo
processes (spawned here) whose fake measurements disagree."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as tmp

WORLD = 2


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), SSDD_CACHE=out)
    for name in ("SSDD_MEMORY_FORMAT", "SSDD_THREADS", "OMP_NUM_THREADS"):
        os.environ.pop(name, None)
    torch.set_num_threads(1)
    from ssdd_cli.kit import distributed, fastpath
    from ssdd_cli.kit.fastpath import FastPath
    from ssdd_cli.kit.precision import resolve_precision

    measured: list[str] = []

    def fake(device: torch.device, precision: str, threads: list[int]) -> FastPath:
        # Each rank's timing prefers another layout: rank 0 channels_last, rank 1 NCHW.
        measured.append(precision)
        return FastPath(rank == 0, threads[-1], "measured", {"nchw/1": 10.0 + rank})

    fastpath.measure = fake  # type: ignore[assignment]
    assert distributed.init_from_environment() and distributed.world_size() == WORLD
    try:
        cpu = torch.device("cpu")
        first = resolve_precision("fp32", cpu)
        again = fastpath.decide(cpu, "fp32")  # this process's earlier decision: no collective
        other = fastpath.decide(cpu, "bf16")
        Path(out, f"{rank}.json").write_text(json.dumps({
            "channels_last": [first.channels_last, again.channels_last, other.channels_last],
            "measured": measured, "threads": torch.get_num_threads()}))
    finally:
        distributed.shutdown()


def test_every_rank_takes_rank_0s_decision(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp.start_processes(_worker, args=(port, str(tmp_path)), nprocs=WORLD, start_method="spawn")
    ranks = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(WORLD)]
    assert ranks[0]["channels_last"] == ranks[1]["channels_last"] == [True, True, True]
    assert ranks[0]["measured"] == ["fp32", "bf16"] and ranks[1]["measured"] == []  # rank 0 alone measures
    assert ranks[0]["threads"] == ranks[1]["threads"]
    assert len(json.loads((tmp_path / "fastpath.json").read_text())) == 2  # rank 0's two entries
