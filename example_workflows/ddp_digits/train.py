"""DDP training of the digits MLP, one process per rank: ``torchrun --nproc_per_node=2 train.py``.

Each rank records its own bundle (rank, world size, host, device); rank 0 logs the metrics
(``collect_all_processes=False``). Launched from a yprov-wf task (an engine task that passes
``yp.current_task().environment`` to torchrun), the rank bundles join that workflow run under that task;
launched alone, all ranks share one workflow run named by the id they derive from torchrun's
environment, and rank 0 writes its workflow.json.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import yprov_wf as yp

NAMESPACE = "https://example.org/digits/"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save-dir", default="prov")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--collect-all", action="store_true", help="record every rank's metrics")
    parser.add_argument("--start-delay", type=float, default=0.0, help="seconds rank>0 waits (tests)")
    parser.add_argument("--die-rank", type=int, default=-1, help="this rank kills itself before end_run (tests)")
    args = parser.parse_args(argv)

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank > 0 and args.start_delay:
        time.sleep(args.start_delay)
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.from_numpy((digits.data / 16.0).astype(np.float32))
    y = torch.from_numpy(digits.target).long()
    dataset = TensorDataset(x, y)
    loader = DataLoader(dataset, batch_size=64, sampler=DistributedSampler(dataset, shuffle=True, seed=0))
    model = DistributedDataParallel(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)))
    optimiser = torch.optim.SGD(model.parameters(), lr=args.lr)

    yp.start_run(prov_user_namespace=NAMESPACE, experiment_name="ddp-mlp", provenance_save_dir=args.save_dir,
                 collect_all_processes=args.collect_all)
    yp.log_params({"lr": args.lr, "epochs": args.epochs, "world_size": world})
    yp.log_dataset(loader, "digits_shard")
    step = 0
    for epoch in range(args.epochs):
        loader.sampler.set_epoch(epoch)
        for xb, yb in loader:
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimiser.step()
            yp.log_metric("loss", loss.item(), yp.Context.TRAINING, step=step)
            step += 1
        if rank == 0:
            yp.save_model_version(model.module, "ddp-mlp", yp.Context.TRAINING, step=epoch)
    dist.barrier()
    if rank == args.die_rank:
        time.sleep(1.0)  # let the other ranks finish, then die as an OOM kill would
        os.kill(os.getpid(), 9)
    yp.end_run()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
