"""DDP training of the digits model inside a Prefect task: the task launches ``torchrun`` with two ranks
(gloo on CPU), and each rank's bundle joins the flow run, started by that task.

    .venv/bin/python example_workflows/ddp_digits/prefect_flow.py [--nproc 2] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("PREFECT_HOME", str(HERE.parents[1] / "build" / "prefect-home"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from prefect_yprov import flow, task  # noqa: E402

import yprov_wf as yp  # noqa: E402


@task
def ddp_train(nproc: int, epochs: int) -> int:
    """Run train.py under torchrun; the ranks find this task's workflow run through the environment."""
    env = {**os.environ, **yp.current_task().environment}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(HERE / "train.py"), "--epochs", str(epochs)]
    subprocess.run(cmd, env=env, check=True)
    return nproc


@flow(name="ddp-digits", namespace="https://example.org/digits/")
def ddp_flow(nproc: int = 2, epochs: int = 2) -> str:
    ddp_train(nproc, epochs)
    return str(yp.current_workflow().dir.root)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    print(f"provenance: {ddp_flow(args.nproc, args.epochs)}")
