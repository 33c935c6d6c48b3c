"""Forward FLOPs of a torch model on one batch, counted with PyTorch's own ``torch.utils.flop_counter``.

A batch is passed to the model as: a tensor → ``model(batch)``; a tuple or list (inputs, targets…) →
``model(batch[0])``; a dict → ``model(**batch)``. Counting runs under ``torch.no_grad()`` and does not
change the model's training mode or weights.

Counts are cached per model and batch signature (the shapes, dtypes and devices of its tensors, the
plain values beside them, and the model's training mode): a training loop that logs every batch pays
for one traced forward pass per distinct shape, not one per batch. A model whose FLOPs depend on the
values in the batch (data-dependent control flow) passes ``recount=True``.
"""

from __future__ import annotations

import weakref
from typing import Any

_cache: weakref.WeakKeyDictionary[Any, dict[tuple, int]] = weakref.WeakKeyDictionary()


class FlopCountError(ValueError):
    """The model cannot be run (traced) on the batch to count its FLOPs."""


def count_flops(model: Any, batch: Any, *, recount: bool = False) -> int:
    """The forward FLOPs of ``model`` on ``batch``; FlopCountError naming the model if it cannot run."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise FlopCountError(f"cannot count FLOPs of {_name(model)}: not a torch.nn.Module")
    key = None if recount else _signature(batch, torch.Tensor)
    if key is not None:
        key = (model.training, key)
        cached = _cache.get(model, {}).get(key)
        if cached is not None:
            return cached
    flops = _trace(model, batch)
    if key is not None:
        _cache.setdefault(model, {})[key] = flops
    return flops


def _trace(model: Any, batch: Any) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    name = _name(model)
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


def _signature(batch: Any, tensor: type) -> tuple | None:
    """What the count depends on, hashable; None when the batch holds something we cannot key on."""
    if isinstance(batch, tensor):
        return ("tensor", tuple(batch.shape), str(batch.dtype), batch.device.type)
    if isinstance(batch, (tuple, list)):
        return ("first", _signature(batch[0], tensor)) if batch and _signature(batch[0], tensor) else None
    if isinstance(batch, dict):
        items = []
        for k in sorted(batch, key=str):
            v = batch[k]
            sig = _signature(v, tensor) if isinstance(v, tensor) else (
                ("value", repr(v)) if v is None or isinstance(v, (bool, int, float, str)) else None)
            if sig is None:
                return None
            items.append((str(k), sig))
        return ("dict", tuple(items))
    return None


def _name(model: Any) -> str:
    return f"model {type(model).__name__!r}"
