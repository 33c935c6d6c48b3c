"""yProv4ML's API generations on yprov-wf: its names, argument orders and keywords.

yProv4ML 1.0 (the paper) puts the model first (``log_model(model, name)``) and requires the namespace;
2.x and 3.x put the label first (``log_model(name, model, …)``) and make ``experiment_name`` the first
argument of ``start_run``. The public calls of :mod:`yprov_wf.api` accept both; this module decides which
one a call is from the types of its arguments (never silently when both readings fit: then it raises
TypeError naming the arguments), maps yProv4ML's keywords to what they did there, and warns once per call
(:class:`~yprov_wf.errors.CompatibilityWarning`) naming each keyword it accepts but does not act on.
The rules are in docs/parity.md.
"""

from __future__ import annotations

import enum
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from yprov_wf.context import Context
from yprov_wf.errors import CompatibilityWarning
from yprov_wf.prov.vocabulary import check_namespace


# -- yProv4ML's enumerations ---------------------------------------------------------------------------------
class MetricsType(enum.Enum):
    """yProv4ML's metric file formats; yprov-wf always writes one Parquet file per run."""

    CSV = "csv"
    ZARR = "zarr"
    NETCDF = "netcdf"


class CompressorType(enum.Enum):
    """yProv4ML's metric file compressors; accepted and not acted on (Parquet compresses itself)."""

    NONE = None
    ZIP = "zip"
    BLOSC_ZSTD = "blosc_zstd"
    LZ4 = "l4"


class LoggingItemKind(enum.Enum):
    """yProv4ML 1.x/2.x ``source=`` of a metric; recorded as the series' ``ywf:metricSource`` (its value)."""

    METRIC = "metric"
    FLOPS_PER_BATCH = "flops_pb"
    FLOPS_PER_EPOCH = "flops_pe"
    SYSTEM_METRIC = "system"
    CARBON_METRIC = "carbon"
    EXECUTION_TIME = "execution_time"
    MODEL_VERSION = "model_version"
    FINAL_MODEL_VERSION = "model_version_final"
    PARAMETER = "param"


Contexts = Context  # yProv4ML's examples use both names


def source_name(source: Any) -> str | None:
    """A metric's ``source=`` (a LoggingItemKind, an enum or a string) as the string recorded."""
    if source is None:
        return None
    if isinstance(source, enum.Enum):
        return str(source.value if source.value is not None else source.name)
    if isinstance(source, str) and source:
        return source
    raise TypeError(f"metric source must be a str or LoggingItemKind, got {source!r}")


# -- warnings -----------------------------------------------------------------------------------------------
def warn_ignored(call: str, ignored: Mapping[str, str], stacklevel: int = 4) -> None:
    """One warning for ``call`` naming each yProv4ML keyword accepted but not acted on, with the reason."""
    if ignored:
        names = "; ".join(f"{k}= ({why})" for k, why in ignored.items())
        warnings.warn(f"yprov-wf: {call}: yProv4ML keyword(s) accepted but not acted on: {names}",
                      CompatibilityWarning, stacklevel=stacklevel)


# Values of ignored keywords that ask for what yprov-wf does anyway: accepted without a warning.
_AS_DONE = {"is_input": False, "incremental": True, "log_copy_in_prov_directory": True, "log_as_artifact": True,
            "log_dataset_info": True, "use_compressor": (None, False), "csv_separator": ",",
            "unify_experiments": False, "create_card": False, "other_attrs": None, "source": None,
            "is_model": False, "use_run_id": None, "context": None}


def _as_done(key: str, value: Any) -> bool:
    done = _AS_DONE.get(key, ...)
    return value in done if isinstance(done, tuple) else value is done or (done is not ... and value == done
                                                                          and type(value) is type(done))


def split_keywords(call: str, options: dict[str, Any], acted: Sequence[str],
                   ignored: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(keywords acted on, {ignored keyword: reason}) — an ignored keyword whose value asks for what
    yprov-wf does anyway (``is_input=False``, ``incremental=True``…) is dropped silently; TypeError for a
    keyword neither knows."""
    unknown = [k for k in options if k not in acted and k not in ignored]
    if unknown:
        raise TypeError(f"{call}() got an unexpected keyword argument {unknown[0]!r}")
    return ({k: v for k, v in options.items() if k in acted},
            {k: ignored[k] for k, v in options.items() if k in ignored and not _as_done(k, v)})


def _ignore(ignored: dict[str, str], key: str, value: Any, reasons: Mapping[str, str]) -> None:
    """Note a positional yProv4ML argument accepted but not acted on (unless it asks for what is done)."""
    if not _as_done(key, value):
        ignored[key] = reasons[key]


# -- start_run / end_run ------------------------------------------------------------------------------------
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$")
_DOTTED = re.compile(r"^[^/:]+\.[A-Za-z]{2,}(?::[0-9]+)?(?:/|$)")

START_RUN_IGNORED = {
    "metrics_file_type": "metrics are one Parquet file per run",
    "csv_separator": "metrics are one Parquet file per run",
    "use_compressor": "metrics are one Parquet file per run",
    "use_run_id": "run ids are generated, unique per run",
    "unify_experiments": "each run has its own folder; `yprov-wf merge` joins runs",
}
END_RUN_IGNORED = {"create_card": "no model card; `yprov-wf report` writes an HTML report"}


def namespace(value: Any) -> str | None:
    """The user's namespace as an absolute IRI: a bare host (yProv4ML's ``www.example.org``) becomes
    ``https://host/`` with one warning; None stays None (the caller falls back like ``workflow()``)."""
    if value is None:
        return None
    if isinstance(value, str) and "://" not in value and not value.startswith(("urn:", "tag:")) \
            and _HOST.match(value):
        iri = check_namespace(f"https://{value}")
        warnings.warn(f"yprov-wf: prov_user_namespace {value!r} is not an absolute IRI; recording under {iri!r}",
                      CompatibilityWarning, stacklevel=3)
        return iri
    return check_namespace(value)


def _iri(value: Any) -> bool:
    return isinstance(value, str) and ("://" in value or value.startswith(("urn:", "tag:")))


def _dotted(value: Any) -> bool:
    return isinstance(value, str) and not _iri(value) and bool(_DOTTED.match(value))


def run_names(first: Any, second: Any, namespace_kw: Any, experiment_kw: Any) -> tuple[Any, Any]:
    """(namespace, experiment name) from start_run's first two positional arguments and the keywords.

    1.0 is ``start_run(prov_user_namespace, experiment_name)``, 2.x/3.x ``start_run(experiment_name,
    prov_user_namespace)``. A positional IRI (``scheme://…``, ``urn:``, ``tag:``) is the namespace; of two
    positional arguments, a dotted host name (``www.example.org``) is the namespace when the other is
    not one; any other positional argument is the experiment name. What stays undecided (a lone dotted
    name such as ``"exp.final"``, two names, two namespaces, a name given twice) raises TypeError.
    """
    positional = [a for a in (first, second) if a is not None]
    ns, exp = namespace_kw, experiment_kw
    if len(positional) == 2 and ns is None and sum(map(_dotted, positional)) == 1 and not any(map(_iri, positional)):
        ns = next(a for a in positional if _dotted(a))  # (name, host) or (host, name)
        positional = [a for a in positional if not _dotted(a)]
    elif len(positional) == 1 and _dotted(positional[0]) and ns is None:
        raise TypeError(f"start_run({positional[0]!r}): is it the namespace (yProv4ML 1.0) or the experiment name "
                        "(2.x/3.x)? pass prov_user_namespace= or experiment_name=")
    for value in positional:
        if _iri(value) and ns is None:
            ns = value
        elif not _iri(value) and exp is None:
            exp = value
        else:
            raise TypeError(f"start_run: cannot tell which of {[first, second]!r} is the namespace and which the "
                            "experiment name; pass prov_user_namespace= and experiment_name=")
    return ns, exp


# -- label-first or model-first calls -----------------------------------------------------------------------
def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and bool(os.fspath(value)) and os.path.exists(value)


def object_and_label(call: str, a: Any, b: Any, what: str, paths_allowed: bool) -> tuple[Any, str]:
    """(object, label) from two positional arguments in either order: the label is the str. Where the
    object may itself be a path (a checkpoint, a dataset file) and both are strings, the one that names
    an existing file or folder is the object; if both or neither do, TypeError."""
    a_label, b_label = isinstance(a, str), isinstance(b, str)
    if a_label and not b_label:
        return b, a
    if b_label and not a_label:
        return a, b
    if a_label and b_label and paths_allowed:
        a_path, b_path = _is_path(a), _is_path(b)
        if a_path != b_path:
            return (a, b) if a_path else (b, a)
        raise TypeError(f"{call}({a!r}, {b!r}): both arguments are strings and {'both' if a_path else 'neither'} "
                        f"name an existing file; pass {what}= and the label by keyword")
    raise TypeError(f"{call}: expected a {what} and a str label (in either order), got "
                    f"{type(a).__name__} and {type(b).__name__}")


@dataclass
class ModelCall:
    model: Any
    label: str
    info: bool = True
    layers: bool = False
    ignored: dict[str, str] = field(default_factory=dict)


LOG_MODEL_IGNORED = {
    "is_input": "a final model is recorded as generated by the run; log an input model with log_artifact(path, "
                "is_input=True)",
    "context": "a final model has no context; save_model_version records one",
    "source": "not recorded for models",
    "log_as_artifact": "the model is always saved",
    "log_copy_in_prov_directory": "the model is always saved in the provenance folder",
    "other_attrs": "extra attributes are not recorded",
}


def log_model_call(model: Any, label: Any, args: tuple, options: dict[str, Any]) -> ModelCall:
    """log_model(model, label) (yprov-wf, 1.0) or log_model(model_name, model, …) (2.x/3.x)."""
    acted, ignored = split_keywords("log_model", options, ("model_name", "model_label", "log_model_info",
                                                           "log_model_layers"), LOG_MODEL_IGNORED)
    name = acted.get("model_name", acted.get("model_label"))
    if name is not None:
        if label is not None or isinstance(model, str):
            raise TypeError(f"log_model: label given twice ({label if label is not None else model!r} and "
                            f"model_name={name!r})")
        if model is None:
            raise TypeError("log_model() needs a model")
        obj, lab = model, name
    elif label is None:
        if model is None or isinstance(model, str):
            raise TypeError("log_model() needs a model and a str label")
        obj, lab = model, "default"  # 1.0: log_model(model) records it as "default"
    else:
        obj, lab = object_and_label("log_model", model, label, "model", paths_allowed=False)
    rest = list(args)  # 1.0: (log_model_info, log_as_artifact); 2.x: (log_model_info, log_model_layers, is_input)
    info, layers = acted.get("log_model_info", True), acted.get("log_model_layers", False)
    label_first = isinstance(model, str)
    if label_first:  # 3.x: (model_name, model, context, source, log_model_info, …)
        for key in ("context", "source"):
            if rest and not isinstance(rest[0], bool):
                _ignore(ignored, key, rest.pop(0), LOG_MODEL_IGNORED)
    if rest:
        info = rest.pop(0)
    if rest:
        if label_first:
            layers = rest.pop(0)
        else:
            _ignore(ignored, "log_as_artifact", rest.pop(0), LOG_MODEL_IGNORED)
    if rest:
        _ignore(ignored, "is_input", rest.pop(0), LOG_MODEL_IGNORED)
    if rest:
        raise TypeError(f"log_model: too many positional arguments: {args!r}")
    for flag, value in (("log_model_info", info), ("log_model_layers", layers)):
        if not isinstance(value, bool):
            raise TypeError(f"log_model: {flag} must be a bool, got {value!r}")
    return ModelCall(obj, lab, info, layers, ignored)


SAVE_MODEL_VERSION_IGNORED = {
    "incremental": "every save is the next version of the model, a prov:Revision of the previous one",
    "is_input": "a model version is recorded as generated by the run",
    "source": "not recorded for model versions",
    "log_copy_in_prov_directory": "the version is always saved in the provenance folder",
    "other_attrs": "extra attributes are not recorded",
}


@dataclass
class VersionCall:
    model: Any
    name: str
    context: Any = None
    step: Any = None
    timestamp: Any = None
    ignored: dict[str, str] = field(default_factory=dict)


def save_model_version_call(model: Any, name: Any, args: tuple, options: dict[str, Any]) -> VersionCall:
    """save_model_version(model, name, context, step, timestamp) (yprov-wf, 1.0) or
    save_model_version(model_name, model, context, step | source, …) (2.x / 3.x)."""
    acted, ignored = split_keywords("save_model_version", options,
                                    ("model_name", "context", "step", "timestamp"), SAVE_MODEL_VERSION_IGNORED)
    if "model_name" in acted:
        if name is not None:
            raise TypeError(f"save_model_version: name given twice ({name!r} and model_name={acted['model_name']!r})")
        obj, label, label_first = model, acted["model_name"], False
    else:
        obj, label = object_and_label("save_model_version", model, name, "model", paths_allowed=True)
        label_first = label is model
    rest = list(args)
    call = VersionCall(obj, label, ignored=ignored)
    if rest:
        call.context = rest.pop(0)
    if label_first and rest and (isinstance(rest[0], str) or rest[0] is None):  # 3.x: (context, source, step, …)
        _ignore(ignored, "source", rest.pop(0), SAVE_MODEL_VERSION_IGNORED)
    if rest:
        call.step = rest.pop(0)
    if rest and not label_first:
        call.timestamp = rest.pop(0)
    for key in ("incremental", "is_input", "log_copy_in_prov_directory", "other_attrs"):
        if rest and label_first:
            _ignore(ignored, key, rest.pop(0), SAVE_MODEL_VERSION_IGNORED)
    if rest:
        raise TypeError(f"save_model_version: too many positional arguments: {args!r}")
    return _with_keywords("save_model_version", call, acted)


LOG_DATASET_IGNORED = {
    "log_dataset_info": "the dataset's kind, sample count, batch size, workers and shuffle are always recorded",
    "source": "not recorded for datasets",
    "other_attrs": "extra attributes are not recorded",
}


def log_dataset_call(dataset: Any, label: Any, args: tuple, options: dict[str, Any]) -> tuple[Any, str, Any, dict]:
    """(dataset, label, context, ignored) of log_dataset(dataset, label, context) (yprov-wf, 1.0) or
    log_dataset(dataset_label, dataset, context, source, …) (2.x / 3.x)."""
    acted, ignored = split_keywords("log_dataset", options, ("dataset_label", "context"), LOG_DATASET_IGNORED)
    if "dataset_label" in acted:
        if label is not None:
            raise TypeError(f"log_dataset: label given twice ({label!r} and dataset_label={acted['dataset_label']!r})")
        obj, lab = dataset, acted["dataset_label"]
    else:
        obj, lab = object_and_label("log_dataset", dataset, label, "dataset", paths_allowed=True)
    label_first = lab is dataset
    rest, context = list(args), acted.get("context")
    if rest and label_first and isinstance(rest[0], bool):  # 2.x: (dataset_label, dataset, log_dataset_info)
        _ignore(ignored, "log_dataset_info", rest.pop(0), LOG_DATASET_IGNORED)
    if rest:
        if context is not None:
            raise TypeError("log_dataset: context given twice")
        context = rest.pop(0)
    for key in ("source", "log_dataset_info", "other_attrs"):
        if rest and label_first:
            _ignore(ignored, key, rest.pop(0), LOG_DATASET_IGNORED)
    if rest:
        raise TypeError(f"log_dataset: too many positional arguments: {args!r}")
    return obj, lab, context, ignored


LOG_ARTIFACT_IGNORED = {
    "source": "the path the artifact was copied from is recorded as its source",
    "log_copy_in_prov_directory": "artifacts are always copied into the provenance folder",
    "log_copy_subdirectory": "artifacts are copied under artifacts/<run-id>/",
    "is_model": "log a model with log_model or save_model_version",
    "other_attrs": "extra attributes are not recorded",
}


@dataclass
class ArtifactCall:
    path: Any
    name: str | None = None
    context: Any = None
    step: Any = None
    timestamp: Any = None
    is_input: bool = False
    ignored: dict[str, str] = field(default_factory=dict)


def log_artifact_call(first: Any, args: tuple, options: dict[str, Any]) -> ArtifactCall:
    """log_artifact(path, context, step, timestamp) (yprov-wf, 1.0) or log_artifact(artifact_name,
    artifact_path, context, step | source, …) (2.x / 3.x).

    Two string arguments are (path, context) when only the first names an existing file or folder, and
    (name, path) when only the second does; when both do (a file named like the label), or the second is
    a path object that does not exist, it is decided as the types say or TypeError.
    """
    acted, ignored = split_keywords("log_artifact", options, ("artifact_name", "artifact_path", "context", "step",
                                                              "timestamp", "is_input", "name"), LOG_ARTIFACT_IGNORED)
    rest = list(args)
    name = acted.get("name", acted.get("artifact_name"))
    path = acted.get("artifact_path")
    label_first = False
    if first is None and path is None:
        raise TypeError("log_artifact() needs the artifact's path")
    if path is not None:  # log_artifact(artifact_name=…, artifact_path=…) or log_artifact("name", artifact_path=…)
        if first is not None:
            if name is not None:
                raise TypeError(f"log_artifact: name given twice ({first!r} and {name!r})")
            name, label_first = first, True
    elif rest and (isinstance(rest[0], os.PathLike) or (isinstance(rest[0], str) and type(rest[0]) is not Context)):
        second = rest[0]
        if isinstance(second, os.PathLike):
            label_first = True
        elif isinstance(first, str):
            first_path, second_path = _is_path(first), _is_path(second)
            if first_path and second_path:
                raise TypeError(f"log_artifact({first!r}, {second!r}): both name existing files; pass "
                                "artifact_path= (and context=) by keyword")
            if not first_path and not second_path:
                raise FileNotFoundError(f"artifact: neither {first!r} nor {second!r} exists")
            label_first = second_path
        if label_first:
            if name is not None:
                raise TypeError(f"log_artifact: name given twice ({first!r} and {name!r})")
            name, path = first, rest.pop(0)
    if path is None:
        path = first
    call = ArtifactCall(path, name, ignored=ignored, is_input=acted.get("is_input", False))
    if rest:
        call.context = rest.pop(0)
    if label_first and rest and (isinstance(rest[0], str) or rest[0] is None):  # 3.x: (…, context, source, step)
        _ignore(ignored, "source", rest.pop(0), LOG_ARTIFACT_IGNORED)
    if rest:
        call.step = rest.pop(0)
    if rest and not label_first:
        call.timestamp = rest.pop(0)
    if label_first:  # 2.x / 3.x: (…, log_copy_in_prov_directory, [log_copy_subdirectory], is_model, is_input)
        for key in ("log_copy_in_prov_directory", "is_model"):
            if rest and isinstance(rest[0], bool):
                _ignore(ignored, key, rest.pop(0), LOG_ARTIFACT_IGNORED)
        if rest and isinstance(rest[0], bool):
            call.is_input = rest.pop(0)
    if rest:
        raise TypeError(f"log_artifact: too many positional arguments: {args!r}")
    return _with_keywords("log_artifact", call, acted)


LOG_PARAM_IGNORED = {"is_input": "params are always recorded as used by the run (inputs)",
                     "source": "not recorded for params"}


def _with_keywords(function: str, call: Any, acted: dict[str, Any]) -> Any:
    """``call`` with the context, step and timestamp given as keywords; one given both ways is an error."""
    for key in ("context", "step", "timestamp"):
        if key in acted:
            if getattr(call, key) is not None:
                raise TypeError(f"{function}: {key} given twice")
            setattr(call, key, acted[key])
    return call
