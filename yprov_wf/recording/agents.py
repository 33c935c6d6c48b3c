"""The agents of a workflow run: the person who ran it (the OS user name unless replaced or turned off) and
the software that acted for them (yprov-wf, the engine, a launcher found in the environment)."""

from __future__ import annotations

import getpass
import os
import platform
import re

from yprov_wf.recording.records import AgentRecord

USER_ENV = "YPROV_WF_USER"  # a user name or an IRI (ORCID…) to record instead of the OS user; "" or "none": no one
_OFF = ("", "none", "off", "false", "0")
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+")


def person(user: str | bool | None = None) -> AgentRecord | None:
    """The person agent: ``user`` (a name or an IRI), else $YPROV_WF_USER, else the OS user name;
    ``user=False`` (or $YPROV_WF_USER set to "" or "none") records no person."""
    if user is None or user is True:
        user = os.environ.get(USER_ENV)
        if user is None:
            try:
                user = getpass.getuser()
            except Exception:  # no user name in this environment (containers): no person agent
                return None
        elif user.strip().lower() in _OFF:
            return None
    if user is False:
        return None
    if not isinstance(user, str):
        raise TypeError(f"user must be a str, False or None, got {type(user).__name__}")
    name = user.strip()
    if not name or any(c in name for c in "\n\r\t"):
        raise ValueError(f"user {user!r} must be a non-empty name or IRI on one line (False records no one)")
    return AgentRecord("person", name)


def is_iri(name: str) -> bool:
    """Whether a person's name is an IRI (``https://orcid.org/…``, ``mailto:…``) to use as its identifier."""
    return bool(_IRI.fullmatch(name)) and ("://" in name or name.startswith(("mailto:", "urn:")))


def software(engine: str, engine_version: str | None) -> list[AgentRecord]:
    """yprov-wf and the engine (for plain Python workflows: the Python interpreter)."""
    from yprov_wf import __version__

    if engine == "python" and engine_version is None:
        engine_version = platform.python_version()
    return [AgentRecord("recorder", "yprov-wf", __version__), AgentRecord("engine", engine, engine_version)]


def launchers() -> list[AgentRecord]:
    """The launchers this process runs under, from their environment variables: SLURM, torchrun, Open MPI."""
    env = os.environ
    found = []
    if env.get("SLURM_JOB_ID"):
        step = env.get("SLURM_STEP_ID")
        found.append(AgentRecord("launcher", "slurm", None, env["SLURM_JOB_ID"] + (f".{step}" if step else "")))
    if env.get("TORCHELASTIC_RUN_ID", "none") not in ("", "none") or env.get("TORCHELASTIC_RESTART_COUNT"):
        found.append(AgentRecord("launcher", "torchrun", None, env.get("TORCHELASTIC_RUN_ID") or None))
    if env.get("OMPI_COMM_WORLD_SIZE"):
        found.append(AgentRecord("launcher", "mpirun", env.get("OMPI_VERSION") or None,
                                 env.get("OMPI_MCA_orte_ess_jobid") or None))
    return found


def workflow_agents(user: str | bool | None, engine: str, engine_version: str | None) -> list[AgentRecord]:
    """The agents recorded on a workflow run opened in this process."""
    who = person(user)
    return ([who] if who else []) + software(engine, engine_version) + launchers()


def with_launchers(agents: list[AgentRecord]) -> list[AgentRecord]:
    """``agents`` plus the launchers of this process that are not among them (a task's agents)."""
    return agents + [a for a in launchers() if a not in agents]


def describe(agents: list[AgentRecord]) -> str:
    """One readable line: ``by alice · yprov-wf 0.1.0 · prefect 3.8.8 · torchrun (run 42)``."""
    parts = []
    for a in agents:
        if a.role == "person":
            parts.append(f"by {a.name}")
        else:
            text = f"{a.name} {a.version}" if a.version else a.name
            parts.append(f"{text} ({a.instance})" if a.instance else text)
    return " · ".join(parts)
