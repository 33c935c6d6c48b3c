"""Workflow Run RO-Crate export (Provenance Run Crate profile 0.5): one zip holding a workflow run's PROV
files, metric files, model versions, artifacts, source copies and the workflow's own file, each with its
sha256, described with the profile's terms. Mapping (documented in docs/crate.md):

    the workflow   its file (Snakefile, flow or script): File + SoftwareSourceCode + ComputationalWorkflow
    workflow run   CreateAction (instrument → the workflow), OrganizeAction of the engine
    task attempt   CreateAction (instrument → the step's SoftwareApplication) + ControlAction (→ HowToStep)
    ML run         CreateAction in its task's ControlAction; object: params, datasets, sources, inputs;
                   result: metric file and series, model versions (isBasedOn the previous), models, artifacts

The crate's JSON is built from the read-back records (``yprov_wf.readback``); the zip is written to a
temporary file and linked into place, so the target is either absent or complete.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import secrets
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from yprov_wf.layout import find_workflow_dirs, sha256_file
from yprov_wf.readback import MLRun, TaskRun, WorkflowRun, load
from yprov_wf.recording.records import COMPLETED, RUNNING, AgentRecord, DataRecord

CRATE_VERSION = "https://w3id.org/ro/crate/1.1"
PROFILES = {
    "Process Run Crate": "https://w3id.org/ro/wfrun/process/0.5",
    "Workflow Run Crate": "https://w3id.org/ro/wfrun/workflow/0.5",
    "Provenance Run Crate": "https://w3id.org/ro/wfrun/provenance/0.5",
    "Workflow RO-Crate": "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
}
CONTEXT = [f"{CRATE_VERSION}/context", "https://w3id.org/ro/terms/workflow-run/context"]
PROV_JSON = "https://www.w3.org/Submission/2013/SUBM-prov-json-20130424/"
METADATA = "ro-crate-metadata.json"
README = "README.md"
NO_LICENSE = "#no-license-given"
SPDX = "https://spdx.org/licenses/"
YPROV_WF_URL = "https://w3id.org/yprov-wf"
_STATUS = {COMPLETED: "CompletedActionStatus", RUNNING: "ActiveActionStatus"}
_SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
_LANGUAGES = {
    "python": {"@id": "#python", "@type": "ComputerLanguage", "name": "Python",
               "identifier": {"@id": "https://www.python.org/"}, "url": {"@id": "https://www.python.org/"}},
    # the identifier Workflow RO-Crate 1.0 gives Snakemake
    "snakemake": {"@id": "https://w3id.org/workflowhub/workflow-ro-crate#snakemake", "@type": "ComputerLanguage",
                  "name": "Snakemake", "identifier": {"@id": "https://snakemake.readthedocs.io"},
                  "url": {"@id": "https://snakemake.readthedocs.io"}},
}
_LAUNCHERS = {"slurm": "https://slurm.schedmd.com/", "torchrun": "https://pytorch.org/docs/stable/elastic/run.html",
              "mpirun": "https://www.open-mpi.org/"}
_FORMATS = {".parquet": "application/vnd.apache.parquet", ".py": "text/x-python", ".json": "application/json",
            ".diff": "text/x-diff", ".md": "text/markdown", ".txt": "text/plain", ".csv": "text/csv",
            ".yaml": "application/yaml", ".yml": "application/yaml", ".smk": "text/plain"}


@dataclass(frozen=True)
class CrateSummary:
    """What ``write_crate`` wrote: the zip, its file and entity counts, the main workflow's path in the
    crate (None if no workflow file was found) and one line per thing the user should know."""

    path: Path
    files: int
    entities: int
    main_workflow: str | None = None
    warnings: tuple[str, ...] = ()


def write_crate(run_dir: str | Path, target: str | Path, *, license: str | None = None,
                workflow_file: str | Path | None = None) -> CrateSummary:
    """Write the Workflow Run RO-Crate of the one workflow run at or under ``run_dir`` to ``target`` (.zip).

    ``license``: the crate's license, an SPDX identifier (``CC-BY-4.0``), a URL or a short text; without
    it the crate says "No license given". ``workflow_file``: the workflow's definition when the run did
    not record it (see docs/crate.md for how it is found otherwise).
    FileExistsError if ``target`` exists; ValueError if ``run_dir`` holds no or several workflow runs, a
    recorded file is missing or ``license`` is empty. Nothing is left at ``target`` on failure."""
    target = Path(target)
    lic = _license(license)
    if target.exists():
        raise FileExistsError(f"crate target {str(target)!r} already exists; remove it or choose another name")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"folder of the crate target {str(target.parent)!r} does not exist")
    source = Path(run_dir)
    if not source.exists():
        raise FileNotFoundError(f"provenance folder {str(run_dir)!r} does not exist")
    given = None
    if workflow_file is not None:
        given = Path(workflow_file)
        if not given.is_file():
            raise FileNotFoundError(f"workflow file {str(workflow_file)!r} does not exist or is not a file")
    roots = find_workflow_dirs(source)
    if len(roots) != 1:
        raise ValueError(f"{run_dir} holds {len(roots)} workflow runs; give the folder of one of them"
                         + (f" (e.g. {roots[0]})" if roots else ""))
    (wf,) = load(roots[0])
    builder = _Builder(wf, lic, given)
    graph, files, generated = builder.build()
    _write_zip(target, graph, files, generated)
    return CrateSummary(target, len(files) + len(generated), len(graph["@graph"]), builder.main_file,
                        tuple(builder.warnings))


# -- the license ---------------------------------------------------------------------------------------
def _license(value: str | None) -> dict[str, Any]:
    """The license entity: an SPDX identifier becomes its spdx.org URL, a URL stays one, other text is a
    described entity; None is the clearly-named "No license given"."""
    if value is None:
        return {"@id": NO_LICENSE, "@type": "CreativeWork", "name": "No license given",
                "description": "Whoever made this crate did not choose a license for its content, so no "
                               "permission to reuse it is granted here. Give one with `yprov-wf crate "
                               "--license <SPDX identifier or URL>`."}
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"crate license must be a non-empty SPDX identifier, URL or text, got {value!r}")
    value = value.strip()
    if value.startswith(("https://", "http://")):
        return {"@id": value, "@type": "CreativeWork", "name": value}
    if _SPDX_ID.match(value):
        return {"@id": SPDX + value, "@type": "CreativeWork", "name": value, "identifier": value}
    return {"@id": "#license", "@type": "CreativeWork", "name": "License", "description": value}


# -- the workflow's own file ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _WorkflowFile:
    """Where the workflow's definition comes from: a file of the run folder (a recorded source copy) or a
    file outside it, copied into the crate when the crate is made."""

    path: Path
    inside: str | None  # its path in the run folder, when it is a recorded copy
    how: str  # how it was found, for the entity's description
    version: str | None = None  # git commit
    url: str | None = None  # git remote


def _find_workflow_file(wf: WorkflowRun, given: Path | None) -> _WorkflowFile | None:
    """The workflow's definition: the file given, the engine's (Snakefile; a Prefect flow's file when the
    integration records it), the running script's recorded copy, or the running script itself."""
    if given is not None:
        return _outside(wf, given.resolve(), "given to `yprov-wf crate --workflow-file`")
    attrs = {**wf.record.environment, **wf.record.attributes}  # read back, engine attributes may be in either
    for key, what in (("snakefile", "the Snakefile recorded by the Snakemake integration"),
                      ("flowFile", "the flow's file recorded by the Prefect integration")):
        value = attrs.get(key)
        if isinstance(value, str) and value:
            p = Path(value)
            if not p.is_absolute() and isinstance(attrs.get("workdir"), str):
                p = Path(str(attrs["workdir"])) / p
            if p.is_file():
                return _outside(wf, p.resolve(), what)
    scripts = _scripts(wf)
    copies = [s for run in wf.runs for s in run.sources if s.files == 1 and s.path.endswith(".py")]
    for s in copies:
        if Path(s.source) in scripts:
            return _copy(s, "the running script, recorded with log_source_code")
    if len({c.source for c in copies}) == 1:  # one script, maybe logged by several runs
        return _copy(copies[0], "the one Python file recorded with log_source_code")
    for script in scripts:
        if script.is_file():
            return _outside(wf, script, "the running script, from the recorded main file or command line")
    return None


def _copy(s: Any, how: str) -> _WorkflowFile:
    return _WorkflowFile(Path(s.source), s.path, how, s.git_commit, s.git_remote)


def _outside(wf: WorkflowRun, path: Path, how: str) -> _WorkflowFile:
    env = wf.record.environment
    repo, commit = env.get("gitRepository"), env.get("gitCommit")
    in_repo = isinstance(repo, str) and isinstance(commit, str) and path.is_relative_to(Path(repo))
    return _WorkflowFile(path, None, how, commit if in_repo and not env.get("gitDirty") else None)


def _scripts(wf: WorkflowRun) -> list[Path]:
    """The user's Python script from the recorded command lines (ML runs' exact argv with their working
    folder first, then the workflow's main file and command line); never the interpreter's own files
    (``python -m pytest``)."""
    from yprov_wf.recording.source import check_not_installed

    found: list[Path] = []
    candidates = [(run.command.argv[0], run.command.cwd) for run in wf.runs if run.command and run.command.argv]
    env = wf.record.environment
    if isinstance(env.get("script"), str) and env["script"]:  # the main file's absolute path
        candidates.append((str(env["script"]), None))
    command, cwd = env.get("command"), env.get("workingDirectory")
    if isinstance(command, str) and command.split():  # as typed: relative to the recorded working folder
        candidates.append((command.split()[0], str(cwd) if isinstance(cwd, str) and cwd else None))
    for arg, cwd in candidates:
        p = Path(arg)
        if not p.is_absolute():
            if cwd is None:
                continue
            p = Path(cwd) / p
        if p.suffix != ".py":
            continue
        try:
            check_not_installed(p.resolve())
        except ValueError:
            continue
        if p.resolve() not in found:
            found.append(p.resolve())
    return found


# -- the graph -----------------------------------------------------------------------------------------
class _Builder:
    """Builds the crate's JSON-LD graph, the files (crate path → source file) and the generated files
    (crate path → bytes) for one run."""

    def __init__(self, wf: WorkflowRun, license: dict[str, Any], workflow_file: Path | None) -> None:
        self.wf = wf
        self.root = wf.root.resolve()
        self.license = license
        self.entities: dict[str, dict[str, Any]] = {}
        self.files: dict[str, Path] = {}
        self.generated: dict[str, bytes] = {}
        self.warnings: list[str] = []
        self.definition = _find_workflow_file(wf, workflow_file)
        self.main_file: str | None = None
        self.version = self._version()
        ns = wf.record.namespace
        # software entities get absolute ids (the profile asks for them), under the user's namespace
        self.software = f"{ns}software/{_frag(wf.name)}" if ns.startswith(("http://", "https://")) else "#software"

    def build(self) -> tuple[dict[str, Any], dict[str, Path], dict[str, bytes]]:
        wf = self.wf
        wf_id = self._main_id()
        action_id = f"#run/{_frag(wf.id)}"
        engine_id = self._engine()
        person = self._person(wf.agents)
        software = _unique([engine_id, *self._software(wf.agents)])
        steps, tools = self._steps(wf, wf_id)
        controls, actions, made = [], [action_id], []
        for task in wf.tasks:
            control, task_actions, task_made = self._task(task, steps[task.name], tools[task.name], person)
            controls.append(control)
            actions.extend(task_actions)
            made.extend(task_made)
        from yprov_wf.prov.dataflow import resolve

        produced = resolve([t.record for t in wf.tasks])  # uses of a generation of this run (not by digest)
        inputs = [self._data(f) for t in wf.tasks for i, f in enumerate(t.inputs) if (t.id, i) not in produced]
        outputs = [self._data(f) for t in wf.tasks for f in t.outputs] or made  # no task outputs: what runs made
        params = [self._param(f"{action_id}/param", wf_id, "#param/workflow", p.key, p.value)
                  for p in wf.record.params]
        prov_file = self._file("workflow.json", {"name": "PROV-JSON of the workflow run",
                                                 "encodingFormat": "application/json",
                                                 "conformsTo": _ref(PROV_JSON), "about": _ref(action_id)},
                               required=wf.record.status != RUNNING)
        self.add(_action(action_id, "CreateAction", f"Run of workflow {wf.name}",
                         f"Workflow run {wf.id} of {wf.name} ({wf.record.engine or 'python'}), {wf.status}, "
                         f"{len(wf.tasks)} task attempt(s).", wf.record, wf_id,
                         _unique(params + inputs), _unique(outputs), subjectOf=_ref(prov_file),
                         agent=_ref(person)))
        self.add({"@id": f"#organize/{_frag(wf.id)}", "@type": "OrganizeAction",
                  "name": f"Orchestration of workflow run {wf.id}", "instrument": [_ref(s) for s in software],
                  "agent": _ref(person),
                  "object": [_ref(c) for c in controls], "result": _ref(action_id),
                  **_times(wf.record.started, wf.record.ended), **_status(wf.record)})
        self._workflow_entity(wf_id, steps, tools)
        self._artifacts_left()
        self._readme(action_id)
        self.add(dict(self.license))
        metadata = {"@id": METADATA, "@type": "CreativeWork", "about": _ref("./"),
                    "conformsTo": [_ref(CRATE_VERSION), _ref(PROFILES["Workflow RO-Crate"])]}
        for name, uri in PROFILES.items():
            self.add({"@id": uri, "@type": "CreativeWork", "name": name, "version": uri.rsplit("/", 1)[1]})
        root = {"@id": "./", "@type": "Dataset", "name": f"Provenance of workflow run {wf.name} {wf.id}",
                "description": "W3C PROV provenance (workflow → task → ML run) recorded by yprov-wf, "
                               "packaged as a Workflow Run RO-Crate (Provenance Run Crate profile).",
                "datePublished": _iso(datetime.now(timezone.utc).timestamp()),
                "license": _ref(self.license["@id"]), "author": _ref(person),
                "conformsTo": [_ref(uri) for uri in PROFILES.values()],
                "mainEntity": _ref(wf_id), "mentions": [_ref(a) for a in actions],
                "hasPart": [_ref(i) for i, e in self.entities.items() if _is_data(e)]}
        entities = [metadata, root, *self.entities.values()]
        graph = {"@context": CONTEXT, "@graph": [_single_values(e) for e in entities]}
        return graph, self.files, self.generated

    def _version(self) -> str | None:
        """The workflow's version: its git commit, else the digest of its file; its tasks share it."""
        d = self.definition
        if d is None:
            return None
        if d.version:
            return d.version
        return f"sha256:{sha256_file(d.path if d.inside is None else self._inside(d.inside))}"

    def _main_id(self) -> str:
        """The main workflow's id: its file's path in the crate, else a contextual entity (and a warning)."""
        d = self.definition
        if d is None:
            self.warnings.append(
                f"no file of workflow {self.wf.name!r} was recorded: the crate names the workflow but does not "
                "hold it, so it is not a valid Workflow RO-Crate; give the file with --workflow-file")
            return f"#workflow/{_frag(self.wf.name)}"
        if d.inside is not None:
            self.main_file = self._inside(d.inside).relative_to(self.root).as_posix()
        else:
            self.main_file = f"workflow/{d.path.name}"
            self.files[self.main_file] = d.path
        return self.main_file

    def _workflow_entity(self, wf_id: str, steps: dict[str, str], tools: dict[str, str]) -> None:
        d, wf = self.definition, self.wf
        language = _LANGUAGES["snakemake" if wf.record.engine == "snakemake" else "python"]
        self.add(dict(language))
        props: dict[str, Any] = {
            "@id": wf_id, "name": wf.name, "programmingLanguage": _ref(language["@id"]),
            "step": [_ref(s) for s in steps.values()], "hasPart": [_ref(t) for t in tools.values()]}
        if d is None:
            self.add({**props, "@type": ["SoftwareSourceCode", "ComputationalWorkflow", "HowTo"]})
            return
        path = self.files.get(wf_id) or self._inside(wf_id)
        self.add({**props, "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
                  "description": f"The definition of workflow {wf.name}: {d.how}"
                                 + (f", copied from {d.path} when the crate was made" if d.inside is None else "")
                                 + ".",
                  "encodingFormat": _format(path), "sha256": sha256_file(path),
                  "contentSize": str(path.stat().st_size), "version": self.version,
                  "url": _ref(d.url) if d.url and d.url.startswith(("http://", "https://")) else None})

    def _engine(self) -> str:
        """The engine that orchestrated the run (an OrganizeAction's instrument), with its version."""
        from yprov_wf import __version__

        engine = self.wf.record.engine or "python"
        if engine in ("python", "yprov-wf"):  # a plain-Python workflow: yprov-wf's workflow() scope
            return self.add({"@id": YPROV_WF_URL, "@type": "SoftwareApplication", "name": "yprov-wf",
                             "description": "A plain-Python workflow run by yprov-wf's workflow() scope.",
                             "url": _ref(YPROV_WF_URL), "softwareVersion": __version__})
        version = next((a.version for a in self.wf.agents if a.role == "engine" and a.name == engine and a.version),
                       None) or self._package_version(engine)
        ident = f"https://pypi.org/project/{_frag(engine)}/" + (f"{_frag(version)}/" if version else "")
        return self.add({"@id": ident, "@type": "SoftwareApplication", "name": engine,
                         "description": f"{engine} (provenance recorded by yprov-wf {__version__})",
                         "url": _ref(ident), "softwareVersion": version})

    def _person(self, agents: list[AgentRecord]) -> str | None:
        """The person who ran the work, a ``Person``: its IRI (an ORCID) as id, else ``#person-<name>``;
        None when no person was recorded (``user=False``)."""
        from yprov_wf.recording.agents import is_iri

        who = next((a for a in agents if a.role == "person"), None)
        if who is None:
            return None
        if is_iri(who.name):
            return self.add({"@id": who.name, "@type": "Person", "name": who.name, "identifier": who.name})
        return self.add({"@id": f"#person-{_frag(who.name)}", "@type": "Person", "name": who.name,
                         "description": "the user name the run was recorded under"})

    def _software(self, agents: list[AgentRecord]) -> list[str]:
        """The software agents besides the engine (yprov-wf, the Python interpreter of a plain-Python
        workflow, launchers) as ``SoftwareApplication``s, for an action's ``instrument``."""
        ids = []
        for a in agents:
            if a.role == "recorder" and a.name == "yprov-wf":
                ids.append(self.add({"@id": YPROV_WF_URL, "@type": "SoftwareApplication", "name": "yprov-wf",
                                     "url": _ref(YPROV_WF_URL), "softwareVersion": a.version}))
            elif a.role == "engine" and a.name == "python" and a.version:
                ident = f"https://www.python.org/downloads/release/python-{_frag(a.version.replace('.', ''))}/"
                ids.append(self.add({"@id": ident, "@type": "SoftwareApplication", "name": "Python",
                                     "description": "the Python interpreter that ran the workflow",
                                     "url": _ref(ident), "softwareVersion": a.version}))
            elif a.role == "launcher":
                url = _LAUNCHERS.get(a.name)
                ident = url or f"#launcher/{_frag(a.name)}"
                ids.append(self.add({"@id": ident, "@type": "SoftwareApplication", "name": a.name,
                                     "description": f"the launcher the run was started under ({a.name}"
                                                    + (f" {a.instance})" if a.instance else ")"),
                                     "url": _ref(url), "softwareVersion": a.version}))
        return ids

    def _package_version(self, name: str) -> str | None:
        rec = self.wf.record
        recorded = rec.attributes.get(f"{name}Version") or rec.environment.get(f"{name}Version")
        if isinstance(recorded, str) and recorded:
            return recorded
        try:
            packages = json.loads(str(rec.environment.get("packages") or "{}"))
        except ValueError:
            return None
        version = packages.get(name) if isinstance(packages, dict) else None
        return str(version) if version else None

    def _steps(self, wf: WorkflowRun, wf_id: str) -> tuple[dict[str, str], dict[str, str]]:
        steps, tools = {}, {}
        for task in wf.tasks:
            if task.name in steps:
                continue
            n = len(steps) + 1
            steps[task.name], tools[task.name] = f"#step/{_frag(task.name)}", f"{self.software}/{_frag(task.name)}"
            self.add({"@id": tools[task.name], "@type": "SoftwareApplication", "name": task.name,
                      "description": f"Task {task.name} of workflow {wf.name}", "isPartOf": _ref(wf_id),
                      "version": self.version})
            self.add({"@id": steps[task.name], "@type": "HowToStep", "name": task.name, "position": str(n),
                      "workExample": _ref(tools[task.name])})
        return steps, tools

    def _task(self, task: TaskRun, step: str, tool: str, wf_person: str | None
              ) -> tuple[str, list[str], list[str]]:
        """The task attempt's actions; returns its control action, its actions and what it made."""
        action_id = f"#task/{_frag(task.id)}"
        person = self._person(task.agents) or wf_person
        # a launcher of the task's own process (a torchrun rank) is an instrument of the attempt, after its tool
        launchers = [a for a in task.agents if a.role == "launcher" and a not in self.wf.agents]
        params = [self._param(f"{action_id}/param", tool, f"#param/task/{_frag(task.name)}", p.key, p.value)
                  for p in task.record.params]
        bundle = self._file(f"tasks/{task.id}.json", {
            "name": f"PROV-JSON bundle of task {task.name}", "encodingFormat": "application/json",
            "conformsTo": _ref(PROV_JSON), "about": _ref(action_id)}, required=task.status != RUNNING)
        name = f"{task.name}" + (f" (attempt {task.record.attempt})" if task.record.attempt > 1 else "")
        runs, made = [], []
        for run in task.runs:
            run_action, run_made = self._ml_run(run, tool, person)
            runs.append(run_action)
            made.extend(run_made)
        # a task that declared no outputs made what its ML runs made (they ran inside it)
        outputs = _unique([self._data(f) for f in task.outputs]) or _unique(made)
        self.add(_action(action_id, "CreateAction", name,
                         f"Attempt {task.record.attempt} of task {task.name} ({task.status}) in workflow run "
                         f"{self.wf.id}.", task.record, [tool, *self._software(launchers)],
                         _unique(params + [self._data(f) for f in task.inputs]), outputs, subjectOf=_ref(bundle),
                         agent=_ref(person)))
        control = f"#control/{_frag(task.id)}"
        self.add({"@id": control, "@type": "ControlAction", "name": f"Orchestration of {name}",
                  "instrument": _ref(step), "object": [_ref(action_id), *(_ref(r) for r in runs)],
                  **_times(task.record.started, task.record.ended), **_status(task.record)})
        return control, [action_id, *runs], outputs

    def _ml_run(self, run: MLRun, tool: str, person: str | None) -> tuple[str, list[str]]:
        """The ML run's action; returns its id and what it made (its results)."""
        rec = run.record
        action_id = f"#mlrun/{_frag(run.id)}"
        app = f"{tool}/experiment/{_frag(rec.experiment)}"
        if app not in self.entities:
            self.add({"@id": app, "@type": "SoftwareApplication", "name": f"{rec.experiment} (ML experiment)",
                      "description": f"The code of ML experiment {rec.experiment} inside task {run.task.name}",
                      "isPartOf": _ref(tool), "version": self.entities[tool].get("version")})
            self.entities[tool].setdefault("hasPart", []).append(_ref(app))
        obj = [self._param(f"{action_id}/param", app,
                           f"#param/experiment/{_frag(run.task.name)}/{_frag(rec.experiment)}", p.key, p.value)
               for p in rec.params]
        for d in rec.datasets:
            props = {"name": d.label, "description": f"{d.kind} dataset"
                     + (f", {d.samples} samples" if d.samples is not None else "")
                     + (f", context {d.context}" if d.context else "")}
            if d.sha256:
                props["sha256"] = d.sha256
            obj.append(self.add({"@id": f"{action_id}/dataset/{_frag(d.label)}", "@type": "CreativeWork",
                                 **props}))
        for s in rec.sources:
            props = {"name": f"source code {s.name}", "codeRepository": s.git_remote,
                     "version": s.git_commit or f"sha256:{s.sha256}",
                     "description": _git_text(s), "programmingLanguage": _ref("#python")
                     if s.path.endswith(".py") else None,
                     "url": _ref(s.git_remote) if s.git_remote and s.git_remote.startswith("http") else None}
            obj.append(self._location(s.path, ["SoftwareSourceCode"], props))
            if s.path.endswith(".py"):
                self.add(dict(_LANGUAGES["python"]))
            if s.git_diff:
                self._location(s.git_diff, [], {"name": f"uncommitted changes of {s.name}",
                                                "encodingFormat": "text/x-diff", "about": _ref(obj[-1])})
        if rec.command is not None:
            obj.append(self.add({"@id": f"{action_id}/command", "@type": "PropertyValue", "name": "command",
                                 "value": json.dumps(rec.command.argv), "description":
                                 f"working directory {rec.command.cwd}; Python {rec.command.executable}"}))
        result = []
        if rec.metrics_file is not None:
            result.append(self._location(rec.metrics_file.path, [], {
                "name": f"metric series of ML run {run.id}", "encodingFormat": "application/vnd.apache.parquet",
                "about": _ref(action_id)}))
        for s in rec.series:
            ident = f"{action_id}/metric/{_frag(s.context or '-')}/{_frag(s.key)}"
            result.append(self.add({"@id": ident, "@type": "PropertyValue", "name": s.key,
                                    "value": s.last, "minValue": s.minimum, "maxValue": s.maximum,
                                    "description": f"{s.count} points"
                                    + (f", context {s.context}" if s.context else "")
                                    + (f", steps {s.first_step}–{s.last_step}" if s.count else "")}))
        previous: dict[str, str] = {}
        for mv in sorted(rec.model_versions, key=lambda m: (m.model_name, m.version)):
            ident = self._location(mv.path, [], {"name": f"{mv.model_name} v{mv.version}",
                                                 "version": str(mv.version), "isBasedOn": _ref(previous.get(
                                                     mv.model_name))})
            previous[mv.model_name] = ident
            result.append(ident)
        for m in rec.models:
            result.append(self._location(m.path, [], {"name": f"model {m.label}"}))
        for a in rec.artifacts:
            ident = self._location(a.path, [], {"name": a.name})
            (obj if a.is_input else result).append(ident)
        self.add(_action(action_id, "CreateAction", f"ML run {rec.experiment} ({run.id})",
                         f"ML run {run.id} of experiment {rec.experiment} ({rec.status}) in task {run.task.name}.",
                         rec, app, _unique(obj), _unique(result), agent=_ref(person)))
        return action_id, _unique(result)

    # -- entities ------------------------------------------------------------------------------------
    def add(self, entity: dict[str, Any]) -> str:
        entity = {k: v for k, v in entity.items() if v is not None and v != [] and v != {"@id": None}}
        ident = entity["@id"]
        if ident in self.entities:
            self.entities[ident].update(entity)
        else:
            self.entities[ident] = entity
        return ident

    def _param(self, prefix: str, owner: str, formal_prefix: str, key: str, value: Any) -> str:
        formal = f"{formal_prefix}/{_frag(key)}"
        if formal not in self.entities:
            self.add({"@id": formal, "@type": "FormalParameter", "name": key,
                      "additionalType": _param_type(value)})
            self.entities.setdefault(owner, {"@id": owner}).setdefault("input", []).append(_ref(formal))
        return self.add({"@id": f"{prefix}/{_frag(key)}", "@type": "PropertyValue", "name": key,
                         "value": value, "exampleOfWork": _ref(formal)})

    def _data(self, f: DataRecord) -> str:
        """A task's input/output: a value, a file of the run folder, or an outside file copied under data/."""
        if f.path is None:
            return self.add({"@id": f"#value/{f.sha256}", "@type": "PropertyValue", "name": f.name or "value",
                             "value": f.description or "", "sha256": f.sha256})
        p = Path(f.path)
        if not p.is_absolute():
            return self._location(f.path, [], {})
        if p.is_file() and sha256_file(p) == f.sha256:
            crate_path = f"data/{f.sha256[:16]}/{p.name}"
            self.files[crate_path] = p
            return self.add({"@id": crate_path, "@type": "File", "name": f.name or p.name, "sha256": f.sha256,
                             "contentSize": str(f.size), "encodingFormat": _format(p),
                             "description": f"copied from {p}"})
        return self.add({"@id": f"#file/{f.sha256}", "@type": "CreativeWork", "name": f.name or p.name,
                         "sha256": f.sha256, "description": f"{p} (no longer present with this content; not "
                                                            "included in the crate)"})

    def _location(self, relative: str, extra_types: list[str], props: dict[str, Any]) -> str:
        """A file or folder of the run folder, included with its digest (folders: every file inside)."""
        path = self._inside(relative)
        if path.is_dir():
            ident = path.relative_to(self.root).as_posix() + "/"
            parts = [self._file(f.relative_to(self.root).as_posix(), {}, required=True)
                     for f in sorted(path.rglob("*")) if f.is_file() and not f.is_symlink()]
            return self.add({"@id": ident, "@type": ["Dataset", *extra_types], **props,
                             "hasPart": [_ref(p) for p in parts]})
        return self._file(relative, {**props, "@type": ["File", *extra_types]}, required=True)

    def _file(self, relative: str, props: dict[str, Any], *, required: bool) -> str | None:
        path = self._inside(relative, required=required)
        if path is None:
            return None
        relative = path.relative_to(self.root).as_posix()  # normalised: no '..' or './' in zip names
        self.files[relative] = path
        types = props.pop("@type", "File")
        props.setdefault("encodingFormat", _format(path))
        return self.add({"@id": relative, "@type": types, **props, "sha256": sha256_file(path),
                         "contentSize": str(path.stat().st_size)})

    def _inside(self, relative: str, *, required: bool = True) -> Any:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"recorded location {relative!r} escapes the workflow run folder {self.root}")
        if not path.exists():
            if not required:
                return None
            raise ValueError(f"recorded file {relative!r} is missing from {self.root}; "
                             "check the folder with `yprov-wf validate`")
        return path

    def _artifacts_left(self) -> None:
        """Files under artifacts/ and metrics/ that no record names (e.g. a crashed run's) go in as plain files."""
        for folder in ("artifacts", "metrics"):
            base = self.root / folder
            if base.is_dir():
                for f in sorted(base.rglob("*")):
                    rel = f.relative_to(self.root).as_posix()
                    if f.is_file() and not f.is_symlink() and rel not in self.files:
                        self._file(rel, {}, required=True)

    def _readme(self, action_id: str) -> None:
        """A README.md for people opening the zip: what the run was and where to look."""
        wf = self.wf
        lines = [f"# Provenance of workflow run {wf.name} {wf.id}", "",
                 f"- engine: {wf.record.engine or 'python'}", f"- status: {wf.status}",
                 f"- started: {_iso(wf.record.started)}"]
        if wf.record.ended:
            lines.append(f"- ended: {_iso(wf.record.ended)}")
        if self.main_file:
            lines.append(f"- workflow definition: `{self.main_file}`")
        lines += ["", "| task attempt | status | ML runs |", "|---|---|---|"]
        lines += [f"| {t.name} ({t.id}) | {t.status} | {len(t.runs)} |" for t in wf.tasks]
        lines += ["", "`ro-crate-metadata.json` describes every file (Workflow Run RO-Crate, Provenance Run Crate "
                  "0.5); `workflow.json` and `tasks/*.json` are the W3C PROV-JSON documents; metric series are "
                  "Parquet files under `metrics/`.", ""]
        data = "\n".join(lines).encode()
        self.generated[README] = data
        self.add({"@id": README, "@type": "File", "name": "README", "about": _ref("./"),
                  "encodingFormat": "text/markdown", "sha256": hashlib.sha256(data).hexdigest(),
                  "contentSize": str(len(data))})


def _action(ident: str, kind: str, name: str, description: str, rec: Any, instrument: str | list[str],
            obj: list[str], result: list[str], **extra: Any) -> dict[str, Any]:
    tools = [instrument] if isinstance(instrument, str) else instrument
    return {"@id": ident, "@type": kind, "name": name, "description": description,
            "instrument": [_ref(t) for t in tools], **_times(rec.started, rec.ended), **_status(rec),
            "object": [_ref(o) for o in obj], "result": [_ref(r) for r in result], **extra}


def _status(rec: Any) -> dict[str, Any]:
    """actionStatus as the profile writes it (the schema.org IRI as a string), and the error if it failed."""
    status = _STATUS.get(rec.status, "FailedActionStatus")
    out: dict[str, Any] = {"actionStatus": f"http://schema.org/{status}"}
    if status == "FailedActionStatus":
        out["error"] = rec.error or rec.status
    return out


def _single_values(entity: dict[str, Any]) -> dict[str, Any]:
    """RO-Crate 1.1 prefers a single value to a one-item list."""
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in entity.items()}


def _write_zip(target: Path, graph: dict[str, Any], files: dict[str, Path], generated: dict[str, bytes]) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(METADATA, json.dumps(graph, indent=1, ensure_ascii=False))
            for arcname, data in sorted(generated.items()):
                z.writestr(arcname, data)
            for arcname, path in sorted(files.items()):
                z.write(path, arcname)
        os.link(tmp, target)  # fails if the target appeared meanwhile: never overwrite
    finally:
        tmp.unlink(missing_ok=True)


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _is_data(entity: dict[str, Any]) -> bool:
    types = entity["@type"] if isinstance(entity["@type"], list) else [entity["@type"]]
    ident = entity["@id"]
    return ("File" in types or "Dataset" in types) and not ident.startswith("#") and "://" not in ident


def _format(path: Path) -> str:
    """The file's media type (application/octet-stream when unknown, e.g. PyTorch checkpoints)."""
    if path.suffix.lower() in _FORMATS:
        return _FORMATS[path.suffix.lower()]
    if path.name == "Snakefile":
        return "text/plain"
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _ref(ident: str | None) -> dict[str, Any] | None:
    return None if ident is None else {"@id": ident}


def _frag(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="-._~")


def _iso(t: float) -> str:
    """ISO 8601 in UTC with milliseconds, the form the Process Run Crate profile checks."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def _times(started: float | None, ended: float | None) -> dict[str, str]:
    out = {}
    if started:
        out["startTime"] = _iso(started)
    if ended:
        out["endTime"] = _iso(ended)
    return out


def _param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    return "Text"


def _git_text(s: Any) -> str | None:
    if not s.git_commit:
        return None
    return (f"git commit {s.git_commit}" + (f" on branch {s.git_branch}" if s.git_branch else "")
            + (" with uncommitted changes" if s.git_dirty else ""))
