"""Forward FLOPs of a torch model on one batch, counted with PyTorch's own ``torch.utils.flop_counter``.

A batch is passed to the model as: a tensor → ``model(batch)``; a tuple or list (inputs, targets…) →
``model(batch[0])``; a dict → ``model(**batch)``. Counting runs under ``torch.no_grad()`` and does not
change the model's training mode or weights.
"""

from __future__ import annotations

from typing import Any


class FlopCountError(ValueError):
    """The model cannot be run (traced) on the batch to count its FLOPs."""


def count_flops(model: Any, batch: Any) -> int:
    """The forward FLOPs of ``model`` on ``batch``; FlopCountError naming the model if it cannot run."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    name = _name(model)
    if not isinstance(model, torch.nn.Module):
        raise FlopCountError(f"cannot count FLOPs of {name}: not a torch.nn.Module")
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            if isinstance(batch, dict):
                model(**batch)
            elif isinstance(batch, (tuple, list)):
                if not batch:
                    raise FlopCountError(f"cannot count FLOPs of {name}: the batch is an empty {type(batch).__name__}")
                model(batch[0])
            else:
                model(batch)
    except FlopCountError:
        raise
    except Exception as exc:
        raise FlopCountError(f"cannot count FLOPs of {name} on a batch of type {type(batch).__name__}: "
                             f"{type(exc).__name__}: {exc}") from exc
    return int(counter.get_total_flops())


def _name(model: Any) -> str:
    return f"model {type(model).__name__!r}"
