"""Describing user objects for provenance: parameter values, models and datasets.

Heavy libraries are never imported here: an object can only be a torch tensor if torch is already
loaded, so ``sys.modules`` is consulted instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from yprov_wf.recording.records import Scalar

_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
_MAX_TEXT = 2000


def param_value(value: Any) -> tuple[Scalar, str]:
    """A parameter value as a JSON scalar plus its Python type name.

    Containers of plain values become JSON text; other objects a readable description with no memory
    address (``torch.Tensor(shape=[3, 4], dtype=torch.float32)``).
    """
    type_name = _type_name(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value, type_name
    if isinstance(value, float):
        return (value if math.isfinite(value) else repr(value)), type_name
    if isinstance(value, Path):
        return str(value), type_name
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, sort_keys=isinstance(value, dict), allow_nan=False)[:_MAX_TEXT], type_name
        except (TypeError, ValueError):
            pass
    shape = getattr(value, "shape", None)
    if isinstance(shape, (tuple, list)) and hasattr(value, "dtype"):  # arrays, tensors (not the numpy module)
        try:
            if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
                return param_value(value.item())[0], type_name
            return f"{type_name}(shape={list(shape)}, dtype={value.dtype})", type_name
        except Exception:
            pass
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ is the object's problem, not the record's
        text = f"<{type_name}>"
    return _ADDRESS.sub("", text if isinstance(text, str) else f"<{type_name}>")[:_MAX_TEXT], type_name


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def model_summary(model: Any) -> dict[str, Any]:
    """Parameter counts, memory and a layer summary for a torch module (empty for other objects)."""
    if not is_torch_module(model):
        return {"modelClass": _type_name(model)}
    params = list(model.parameters())
    buffers = list(model.buffers())
    layers = [
        [name, type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False))]
        for name, m in model.named_modules()
        if name and not any(True for _ in m.children())
    ]
    return {
        "modelClass": _type_name(model),
        "parameterCount": sum(p.numel() for p in params),
        "trainableParameterCount": sum(p.numel() for p in params if p.requires_grad),
        "memoryBytes": sum(t.numel() * t.element_size() for t in params + buffers),
        "layers": layers,
    }


_LAYER_ATTRS = ("in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride", "padding",
                "num_layers", "hidden_size", "num_heads", "embed_dim", "p")


def layer_details(model: Any) -> list[dict[str, Any]]:
    """Per leaf layer: name, class, parameter count, dtype and the shape attributes it has (in/out features
    and channels, kernel size, stride, padding…), as yProv4ML's ``log_model_layers`` recorded them."""
    if not is_torch_module(model):
        return []
    out = []
    for name, m in model.named_modules():
        if not name or any(True for _ in m.children()):
            continue
        own = list(m.parameters(recurse=False))
        layer: dict[str, Any] = {"name": name, "type": type(m).__name__, "parameters": sum(p.numel() for p in own)}
        if own:
            layer["dtype"] = str(own[0].dtype).removeprefix("torch.")
        for attr in _LAYER_ATTRS:
            value = getattr(m, attr, None)
            if isinstance(value, (int, float, str)) and not isinstance(value, bool) or (
                    isinstance(value, tuple) and all(isinstance(v, int) for v in value)):
                layer[attr] = list(value) if isinstance(value, tuple) else value
        out.append(layer)
    return out


def save_model(model: Any, path: Path) -> None:
    """Save a torch module's state_dict (or any object with one) with torch.save, else pickle it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = getattr(model, "state_dict", None)
    if callable(state_dict) and "torch" in sys.modules:
        sys.modules["torch"].save(state_dict(), path)
    else:
        import pickle

        with open(path, "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)


def dataset_description(dataset: Any) -> tuple[str, int | None, dict[str, Scalar], bytes | None]:
    """(kind, samples, attributes, bytes to digest or None) for a dataset-like object.

    Handles torch DataLoader / Subset / Dataset, numpy arrays, pandas DataFrames and sized sequences.
    Files and folders are handled by the caller (they are digested from disk).
    """
    kind = _type_name(dataset)
    torch = sys.modules.get("torch")
    if torch is not None:
        data = torch.utils.data
        if isinstance(dataset, data.DataLoader):
            inner_kind, samples, attrs, _ = dataset_description(dataset.dataset)
            attrs = {**attrs, "innerKind": inner_kind, "batchSize": dataset.batch_size,
                     "batches": len(dataset), "dropLast": dataset.drop_last,
                     "sampler": type(dataset.sampler).__name__, "numWorkers": dataset.num_workers}
            return kind, samples, attrs, None
        if isinstance(dataset, data.Subset):
            _, parent, attrs, _ = dataset_description(dataset.dataset)
            return kind, len(dataset), {**attrs, "parentSamples": parent}, None
        if isinstance(dataset, torch.Tensor):
            shape = list(dataset.shape)
            raw = dataset.detach().cpu().contiguous().numpy().tobytes()
            return kind, (shape[0] if shape else 1), {"shape": json.dumps(shape), "dtype": str(dataset.dtype)}, raw
        if isinstance(dataset, data.TensorDataset):
            shapes = [list(t.shape) for t in dataset.tensors]
            return kind, len(dataset), {"tensorShapes": json.dumps(shapes)}, None
    if "pandas" in sys.modules and isinstance(dataset, sys.modules["pandas"].DataFrame):
        digest = _pandas_bytes(dataset)
        return kind, len(dataset), {"columns": json.dumps([str(c) for c in dataset.columns])}, digest
    if hasattr(dataset, "shape") and hasattr(dataset, "dtype") and hasattr(dataset, "tobytes"):
        shape = list(dataset.shape)
        attrs = {"shape": json.dumps(shape), "dtype": str(dataset.dtype)}
        return kind, (shape[0] if shape else 1), attrs, _array_bytes(dataset)
    try:
        return kind, len(dataset), {}, None
    except TypeError:
        return kind, None, {}, None


def _pandas_bytes(frame: Any) -> bytes:
    """The bytes a DataFrame or Series is digested from: pandas' row hashes; cells pandas cannot hash
    (lists, dicts) fall back to the object's pickle, so such a frame is still recorded."""
    try:
        return sys.modules["pandas"].util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    except TypeError:
        import pickle

        return b"pandas-pickle|" + pickle.dumps(frame, protocol=4)


def _array_bytes(array: Any) -> bytes:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(array, np.ndarray):
        return np.ascontiguousarray(array).tobytes()
    return array.tobytes()


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def value_fingerprint(value: Any) -> tuple[str, int, str]:
    """(sha256, size in bytes, description) of an in-memory value, for task inputs and results.

    Arrays and tensors are digested from their bytes (with shape and dtype), DataFrames with pandas'
    row hashes, JSON-able values from canonical JSON, anything else from its pickle.
    """
    description, _ = param_value(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().contiguous().numpy()
    if "pandas" in sys.modules and isinstance(value, (sys.modules["pandas"].DataFrame, sys.modules["pandas"].Series)):
        data = _pandas_bytes(value)
    elif hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "tobytes"):
        data = f"{list(value.shape)}|{value.dtype}|".encode() + _array_bytes(value)
    else:
        try:
            data = json.dumps(value, sort_keys=True, allow_nan=True, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            import pickle

            try:
                data = pickle.dumps(value, protocol=4)
            except Exception:  # unpicklable (locks, generators…): identify it by type and description
                data = f"{_type_name(value)}|{description}".encode()
    return hashlib.sha256(data).hexdigest(), len(data), str(description)[:_MAX_TEXT]
