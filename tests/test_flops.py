"""FLOPs per batch and per epoch, counted with torch.utils.flop_counter."""

from __future__ import annotations

import pytest
import torch

import yprov_wf as yp
from tests.conftest import NS
from yprov_wf.flops import FlopCountError, count_flops


class _Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(8, 16)
        self.b = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


class _Keywords(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 4)

    def forward(self, features: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.lin(features) * scale


def _expected(batch: int) -> int:
    return 2 * batch * 8 * 16 + 2 * batch * 16 * 4  # two matmuls (multiply + add)


def test_count_flops_batch_shapes():
    model = _Mlp()
    x = torch.randn(5, 8)
    assert count_flops(model, x) == _expected(5)
    assert count_flops(model, (x, torch.zeros(5))) == _expected(5)  # (inputs, targets)
    assert count_flops(_Keywords(), {"features": x, "scale": 2.0}) == 2 * 5 * 8 * 4
    model.train()
    count_flops(model, x)
    assert model.training  # counting leaves the mode alone


def test_flops_metrics_per_batch_and_epoch(tmp_path):
    model = _Mlp()
    batches = [torch.randn(4, 8), torch.randn(2, 8)]
    with yp.start_run(NS, "flops", provenance_save_dir=tmp_path / "prov"):
        for i, b in enumerate(batches):
            assert yp.log_flops_per_batch("flops", model, b, yp.Context.TRAINING, step=i) == _expected(len(b))
        total = yp.log_flops_per_epoch("flops_epoch", context=yp.Context.TRAINING, step=0, batch_label="flops")
        assert total == _expected(6)
        # the total restarts after being logged
        assert yp.log_flops_per_epoch("flops_epoch", context=yp.Context.TRAINING, step=1, batch_label="flops") == 0
        over_data = yp.log_flops_per_epoch("flops_data", model, batches, yp.Context.VALIDATION, step=0)
        assert over_data == _expected(6)
    run = yp.load(tmp_path / "prov")[0].runs[0]
    assert run.metric("flops", "training")["value"].tolist() == [_expected(4), _expected(2)]
    assert run.metric("flops_epoch", "training")["value"].tolist() == [_expected(6), 0]
    assert run.metric("flops_data", "validation")["value"].tolist() == [_expected(6)]


def test_model_that_cannot_be_traced(tmp_path):
    with yp.start_run(NS, "bad", provenance_save_dir=tmp_path / "prov"):
        with pytest.raises(FlopCountError, match="cannot count FLOPs of model '_Mlp'.*RuntimeError"):
            yp.log_flops_per_batch("flops", _Mlp(), torch.randn(3, 5), step=0)  # wrong input width
        with pytest.raises(FlopCountError, match="model 'function': not a torch.nn.Module"):
            yp.log_flops_per_batch("flops", lambda x: x, torch.randn(3, 8))
        with pytest.raises(FlopCountError, match="empty tuple"):
            yp.log_flops_per_batch("flops", _Mlp(), ())
        with pytest.raises(TypeError, match="batch_label"):
            yp.log_flops_per_epoch("flops_epoch", _Mlp())
        with pytest.raises(TypeError, match="batch_label"):
            yp.log_flops_per_epoch("flops_epoch")
    assert yp.load(tmp_path / "prov")[0].runs[0].series == []  # nothing half-logged


class _DataDependent(torch.nn.Module):
    """FLOPs depend on the values: the linear layer runs only for a positive batch."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) if bool(x.sum() > 0) else x


def test_counts_are_cached_per_batch_shape_unless_recount():
    model = _DataDependent()
    positive, negative = torch.ones(2, 8), -torch.ones(2, 8)
    assert count_flops(model, positive) == 2 * 2 * 8 * 8
    assert count_flops(model, negative) == 2 * 2 * 8 * 8  # same shape: the cached count
    assert count_flops(model, negative, recount=True) == 0  # traced again
    assert count_flops(model, -torch.ones(3, 8)) == 0  # a new shape is traced
    assert count_flops(_DataDependent(), negative) == 0  # another model has its own cache
    model.eval()
    assert count_flops(model, negative) == 0  # the training mode is part of the key
