"""The yprov-wf vocabulary: one namespace for this project's classes and properties.

Documented term by term in docs/prov-mapping.md.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote, urlsplit

YWF_PREFIX = "ywf"
YWF_URI = "https://w3id.org/yprov-wf/ns#"
USER_PREFIX = "user"
PERSON_PREFIX = "person"  # the namespace of a person agent named by an IRI (ORCID…)

# Classes (values of prov:type)
WORKFLOW_RUN = "WorkflowRun"
TASK_RUN = "TaskRun"
ML_RUN = "MLRun"
TASK_COLLECTION = "TaskCollection"
PARAMETER = "Parameter"
METRIC_SERIES = "MetricSeries"
MODEL_VERSION = "ModelVersion"
MODEL = "Model"
ARTIFACT = "Artifact"
DATASET = "Dataset"
DATA_FILE = "DataFile"
DATA_VALUE = "DataValue"
CONTENT = "Content"
SOURCE_CODE = "SourceCode"


def check_namespace(namespace: str) -> str:
    """The user's namespace as an absolute IRI ending in '/' or '#'; raises ValueError otherwise."""
    if not isinstance(namespace, str):
        raise TypeError(f"prov_user_namespace must be a str, got {type(namespace).__name__}")
    parts = urlsplit(namespace)
    # an authority (https://host/), or a scheme whose IRIs have none: urn:, tag:, file:///abs/path/
    authority_free = parts.scheme in ("urn", "tag") or (parts.scheme == "file" and namespace.startswith("file:///"))
    if not parts.scheme or not (parts.netloc or authority_free) or " " in namespace:
        raise ValueError(
            f"prov_user_namespace {namespace!r} is not an absolute IRI; use e.g. 'https://example.org/'"
        )
    return namespace if namespace.endswith(("/", "#")) else namespace + "/"


def local(*parts: str) -> str:
    """A local name under the user's namespace; each part is percent-encoded (keys may hold '/')."""
    return "/".join(map(_quoted, parts))


@lru_cache(maxsize=4096)  # the same ids (workflow, task, agents) recur in every record of a bundle
def _quoted(part: str) -> str:
    return quote(part, safe="-._~")


def workflow_id(wf: str) -> str:
    return local("workflow", wf)


def collection_id(wf: str) -> str:
    return local("workflow", wf, "collection")


def task_id(task: str) -> str:
    return local("task", task)


def bundle_id(task: str) -> str:
    return local("task", task, "bundle")


def run_id(run: str) -> str:
    return local("run", run)


def output_id(task: str, index: int) -> str:
    """The entity of a task's ``index``-th output: one generation, unique across workflow runs."""
    return local("task", task, "output", str(index))


def input_id(task: str, index: int) -> str:
    """The entity of a task's ``index``-th input when it is no output this task knows (its own view)."""
    return local("task", task, "input", str(index))


def content_id(sha256: str) -> str:
    """Content identity: every file or value with these bytes is a ``prov:specializationOf`` it."""
    return local("content", sha256)


def person_id(name: str) -> str:
    return local("person", name)


def agent_id(wf: str, name: str, instance: str | None = None) -> str:
    """A software agent of one workflow run (the running software, not the release): ``<name>`` or, for a
    launcher with an id of its own, ``<name>-<id>``."""
    return local("workflow", wf, "agent", f"{name}-{instance}" if instance else name)
