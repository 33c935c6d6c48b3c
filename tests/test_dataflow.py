"""Identity per generation: each output is its own entity, and a use joins the very generation it read
(same path and digest, the latest before the use) or the record it received — never a digest alone. The
cases that merged under content identity: empty files, copies, the same bytes in two files, a regenerated
file, a file changed without a record, two runs in one save dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, load, only_run_dir, relations
from yprov_wf.cli import main as cli
from yprov_wf.prov.reading import literal as value


def _flow(root: Path) -> tuple[dict[str, str], set[tuple[str, str]], dict]:
    """(task id by name, (informed, informant) name pairs, workflow.json) of one run."""
    wf = load(root / "workflow.json")
    ids = {value(a["ywf:name"]): i for i, a in by_type(wf, "TaskRun").items()}
    names = {i: n for n, i in ids.items()}
    informed = {(names[r["prov:informed"]], names[r["prov:informant"]]) for r in relations(wf, "wasInformedBy")}
    return ids, informed, wf


def _used(wf: dict, activity: str) -> set[str]:
    return {r["prov:entity"] for r in relations(wf, "used") if r["prov:activity"] == activity}


def _generated(wf: dict, activity: str) -> set[str]:
    """The data the task generated (not its bundle)."""
    return {r["prov:entity"] for r in relations(wf, "wasGeneratedBy")
            if r["prov:activity"] == activity and not r["prov:entity"].endswith("/bundle")}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_empty_files_of_two_tasks_stay_two_entities(tmp_path, save_dir):
    with yp.workflow("empty", namespace=NS, save_dir=save_dir):
        with yp.task("a", outputs=[tmp_path / "a.done"]):
            _write(tmp_path / "a.done", "")
        with yp.task("b", outputs=[tmp_path / "b.done"]):
            _write(tmp_path / "b.done", "")
        with yp.task("after_b", inputs=[tmp_path / "b.done"]):
            pass
        with yp.task("after_a", inputs=[tmp_path / "a.done"]):
            pass
    root = only_run_dir(save_dir)
    ids, informed, wf = _flow(root)
    assert informed == {("after_b", "b"), ("after_a", "a")}
    assert _used(wf, ids["after_b"]) == _generated(wf, ids["b"]) != _generated(wf, ids["a"])
    # both files are specializations of the one content entity of the empty bytes
    content = {r["prov:generalEntity"] for r in relations(wf, "specializationOf")}
    (empty,) = content
    assert value(by_type(wf, "Content")[empty]["ywf:size"]) == 0
    assert cli(["validate", str(root)]) == 0


def test_a_copy_links_its_reader_to_the_copier_not_to_the_original(tmp_path, save_dir):
    data, copy = tmp_path / "data.csv", tmp_path / "copy.csv"
    with yp.workflow("copies", namespace=NS, save_dir=save_dir):
        with yp.task("make", outputs=[data]):
            _write(data, "x,y\n1,2\n")
        with yp.task("copy", inputs=[data], outputs=[copy]):
            shutil.copy(data, copy)
        with yp.task("read_copy", inputs=[copy]):
            pass
        with yp.task("read_data", inputs=[data]):
            pass
    _, informed, _ = _flow(only_run_dir(save_dir))
    assert informed == {("copy", "make"), ("read_copy", "copy"), ("read_data", "make")}


def test_two_tasks_writing_the_same_bytes_to_two_files(tmp_path, save_dir):
    with yp.workflow("same-bytes", namespace=NS, save_dir=save_dir):
        with yp.task("left") as t:
            t.log_output(_write(tmp_path / "left.txt", "42\n"))
        with yp.task("right") as t:
            t.log_output(_write(tmp_path / "right.txt", "42\n"))
        with yp.task("use_right", inputs=[tmp_path / "right.txt"]):
            pass
    _, informed, _ = _flow(only_run_dir(save_dir))
    assert informed == {("use_right", "right")}


def test_a_regenerated_file_is_a_new_generation_and_each_reader_gets_its_own(tmp_path, save_dir):
    f = tmp_path / "state.txt"
    with yp.workflow("regenerate", namespace=NS, save_dir=save_dir):
        with yp.task("first", outputs=[f]):
            _write(f, "v1")
        with yp.task("reader1", inputs=[f]):
            pass
        with yp.task("second", inputs=[f], outputs=[f]):  # reads it and writes the same bytes again
            _write(f, "v1")
        with yp.task("reader2", inputs=[f]):
            pass
    root = only_run_dir(save_dir)
    ids, informed, wf = _flow(root)
    assert informed == {("reader1", "first"), ("second", "first"), ("reader2", "second")}
    (gen1,), (gen2,) = _generated(wf, ids["first"]), _generated(wf, ids["second"])
    assert gen1 != gen2 and _used(wf, ids["reader2"]) == {gen2} and _used(wf, ids["second"]) == {gen1}
    # the bundles name the same generations as workflow.json (the producer was known in this process)
    reader2 = bundle_of(next((root / "tasks").glob("reader2-*.json")))
    assert {r["prov:entity"] for r in relations(reader2, "used")} == {gen2}
    assert cli(["validate", str(root)]) == 0


def test_a_file_changed_without_a_record_links_to_no_one(tmp_path, save_dir):
    f = tmp_path / "data.txt"
    with yp.workflow("changed", namespace=NS, save_dir=save_dir):
        with yp.task("make", outputs=[f]):
            _write(f, "v1")
        _write(f, "edited by hand")
        with yp.task("use", inputs=[f]):
            pass
    ids, informed, wf = _flow(only_run_dir(save_dir))
    assert informed == set()
    (used,) = _used(wf, ids["use"])
    assert used == ids["use"] + "/input/0"  # its own entity: the file as it found it


def test_two_runs_never_share_a_generation(tmp_path, save_dir):
    f = tmp_path / "out.txt"
    for _ in range(2):
        with yp.workflow("twice", namespace=NS, save_dir=save_dir):
            with yp.task("make", outputs=[f]):
                _write(f, "same every time")
            with yp.task("use", inputs=[f]):
                pass
    generated = []
    for root in sorted((save_dir / "twice").iterdir()):
        ids, informed, wf = _flow(root)
        assert informed == {("use", "make")}
        generated.append(_generated(wf, ids["make"]))
    assert len(generated[0]) == len(generated[1]) == 1 and not generated[0] & generated[1]


def test_a_value_links_only_through_the_record_it_came_from(save_dir):
    with yp.workflow("values", namespace=NS, save_dir=save_dir):
        with yp.task("one") as t:
            one = t.log_output(1, name="return")
        with yp.task("also_one") as t:
            t.log_output(1, name="return")
        with yp.task("use") as t:
            t.log_input(one, name="x")
    _, informed, _ = _flow(only_run_dir(save_dir))
    assert informed == {("use", "one")}
