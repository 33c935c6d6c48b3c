"""YProvLogger: real Lightning training on the digits data inside a yprov-wf task."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning_yprov import YProvLogger, context_for
from rocrate.rocrate import ROCrate
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, relations, value
from yprov_wf.crate import write_crate
from yprov_wf.layout import sha256_file


class DigitsMlp(L.LightningModule):
    def __init__(self, lr: float = 0.1, hidden: int = 32, optim: dict | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val/acc", (self(x).argmax(1) == y).float().mean())
        self.log("loss", torch.nn.functional.cross_entropy(self(x), y))  # no prefix: the stage decides

    def test_step(self, batch, _):
        x, y = batch
        self.log("test_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loaders():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train = DataLoader(TensorDataset(x[:320], y[:320]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[320:420], y[320:420]), batch_size=50)
    test = DataLoader(TensorDataset(x[420:520], y[420:520]), batch_size=50)
    return train, val, test


def _trainer(logger, root: Path) -> L.Trainer:
    return L.Trainer(max_epochs=2, logger=logger, accelerator="cpu", devices=1, enable_progress_bar=False,
                     enable_model_summary=False, log_every_n_steps=3, default_root_dir=root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("lightning")
    torch.manual_seed(0)
    train, val, test = _loaders()
    warnings.filterwarnings("ignore", module="lightning")
    with yp.workflow("digits-lightning", namespace=NS, save_dir=base / "prov") as wf:
        with yp.task("train") as task:
            logger = YProvLogger("mlp", model_name="digits")
            trainer = _trainer(logger, base)
            trainer.fit(DigitsMlp(optim={"momentum": 0.0, "nesterov": False}), train, val)
            trainer.test(trainer.lightning_module, test, verbose=False)
    return SimpleNamespace(root=wf.dir.root, task=task, logger=logger, base=base)


def test_runs_open_inside_the_current_task(trained):
    (wf,) = yp.load(trained.root)
    (task,) = wf.tasks
    assert task.id == trained.task.record.task_id
    fit, test = task.runs  # fit, then test: one ML run each, both in the task's bundle
    assert [r.id for r in (fit, test)] == [i.run_id for i in trained.logger.runs]
    assert fit.experiment == test.experiment == "mlp" and fit.status == test.status == "completed"


def test_hyperparameters_become_params(trained):
    fit = yp.load(trained.root)[0].runs[0]
    assert fit.params == {"lr": 0.1, "hidden": 32, "optim/momentum": 0.0, "optim/nesterov": False}


def test_metrics_with_steps_and_contexts(trained):
    fit, test = yp.load(trained.root)[0].runs
    contexts = {(s.key, s.context) for s in fit.series}
    assert {("train_loss", "training"), ("val/acc", "validation"), ("loss", "validation")} <= contexts
    loss = fit.metric("train_loss", "training")
    # 320 samples / 32 = 10 batches per epoch, logged every 3rd batch (Lightning counts across epochs)
    assert loss["step"].tolist() == [2, 5, 8, 11, 14, 17]
    assert loss["value"].notna().all()
    val = fit.metric("val/acc", "validation")
    assert len(val) == 2 and val["step"].tolist() == [9, 19] and val["value"].between(0, 1).all()
    assert fit.metric("loss", "validation")["step"].tolist() == [9, 19]  # the step Lightning gives
    assert {(s.key, s.context) for s in test.series} >= {("test_acc", "testing")}
    assert 0.0 <= test.metric("test_acc")["value"].iloc[0] <= 1.0


def test_checkpoints_are_model_versions(trained):
    fit = yp.load(trained.root)[0].runs[0]
    versions = fit.model_versions
    assert [(v.model_name, v.version, v.step, v.context) for v in versions] == [
        ("digits", 1, 10, "training"), ("digits", 2, 20, "training")]
    for v in versions:
        path = fit.path(v.path)
        assert path.suffix == ".ckpt" and sha256_file(path) == v.sha256
        checkpoint = torch.load(path, weights_only=False)
        assert "state_dict" in checkpoint and checkpoint["global_step"] == v.step
    bundle = bundle_of(trained.root / "tasks" / f"{trained.task.record.task_id}.json")
    mv = by_type(bundle, "ModelVersion")
    by_version = {int(value(a["ywf:version"])): ident for ident, a in mv.items()}
    derived = {(r["prov:generatedEntity"], r["prov:usedEntity"]) for r in relations(bundle, "wasDerivedFrom")}
    assert (by_version[2], by_version[1]) in derived  # v2 is a revision of v1


def test_crate_of_the_lightning_run(trained):
    target = trained.base / "lightning.crate.zip"
    write_crate(trained.root, target)
    c = ROCrate(target)
    fit = yp.load(trained.root)[0].runs[0]
    action = c.dereference(f"#mlrun/{fit.id}")
    results = {r.id: r for r in action["result"]}
    for v in fit.model_versions:
        assert results[v.path]["sha256"] == v.sha256


def test_context_rule():
    assert context_for("train_loss") == "training" and context_for("Training/acc") == "training"
    assert context_for("val_loss") == "validation" and context_for("valid.acc") == "validation"
    assert context_for("test-f1") == "testing" and context_for("predict_time") == "prediction"
    assert context_for("trainable_params") is None  # a word, not a prefix
    assert context_for("loss", "validate") == "validation" and context_for("loss", "train") == "training"
    assert context_for("loss", "sanity_check") == "validation" and context_for("epoch", "test") == "testing"
    assert context_for("val_loss", "train") == "validation"  # the name wins over the stage


def test_logger_outside_a_task_is_a_workflow_of_one_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, _, _ = _loaders()
    logger = YProvLogger("alone", namespace=NS, provenance_save_dir=tmp_path / "prov")
    trainer = L.Trainer(max_steps=3, logger=logger, accelerator="cpu", devices=1, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1,
                        default_root_dir=tmp_path)
    trainer.fit(DigitsMlp(), train)
    (wf,) = yp.load(tmp_path / "prov")
    assert wf.name == "alone" and wf.status == "completed" and len(wf.tasks) == 1
    assert wf.runs[0].metric("train_loss")["step"].tolist() == [0, 1, 2]


def test_bad_input(tmp_path, monkeypatch):
    monkeypatch.delenv("YPROV_WF_NAMESPACE", raising=False)
    with pytest.raises(ValueError, match="experiment_name"):
        YProvLogger("")
    with pytest.raises(ValueError, match="model_name"):
        YProvLogger("x", model_name=" ")
    with pytest.raises(ValueError, match="needs namespace="):
        YProvLogger("x").log_metrics({"loss": 1.0}, step=0)
    logger = YProvLogger("x", namespace=NS, provenance_save_dir=tmp_path / "prov")
    with pytest.warns(yp.ProvenanceWarning, match="not recorded.*outside the allowed folders"):
        logger.after_save_checkpoint(SimpleNamespace(_last_checkpoint_saved="/etc/hostname"))
    logger.finalize("failed")
    run = yp.load(tmp_path / "prov")[0].runs[0]
    assert run.status == "failed" and run.model_versions == []
