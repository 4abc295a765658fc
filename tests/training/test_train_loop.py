"""The training loop on a tiny in-memory data set: loss, early stopping, checkpoints, resume, cross-validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from inference.models import ModelSpec, load_checkpoint, save_checkpoint
from training import train as train_mod
from training.config import TrainingConfig
from training.data import RecordingWindows, WindowDataset
from training.engine import LogitModel, build_model, evaluate, train_one_epoch
from training.folds import Fold
from training.train import run_cross_validation, train_fold

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add overhead, and keep results bitwise repeatable
    yield
    torch.set_num_threads(threads)


def _recordings(n_asd: int = 2, n_non: int = 2, windows: int = 3, px: int = 32, seed: int = 0):
    """ASD windows are brighter than non-ASD ones: easy to learn."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_asd + n_non):
        label = int(i < n_asd)
        mean = 170 if label else 70
        front = np.clip(rng.normal(mean, 25, (windows, 8, px, px, 3)), 0, 255).astype(np.uint8)
        side = np.clip(rng.normal(mean, 25, (windows, 8, px, px, 3)), 0, 255).astype(np.uint8)
        out.append(RecordingWindows(f"{'asd' if label else 'non'}{i}", label, {"front": front, "side": side}))
    return out


def _tcfg(**kw) -> TrainingConfig:
    base = {"width": 8, "input_px": 32, "frames": 8, "batch_size": 4, "lr": 1e-3, "dropout_rate": 0.0,
            "epochs_max": 3, "patience": 5, "folds": 2, "device": "cpu"}
    return TrainingConfig(**{**base, **kw})


FOLD = Fold(1, ("asd0", "non2"), ("asd1", "non3"))


def test_dataset_items():
    """Items are (clips per view, label, participant): Kinetics-normalised (3, T, H, W) float32, ASD = 1."""
    recs = _recordings()
    ds = WindowDataset(recs, views=("side",), participants=["asd0", "non3"])
    assert len(ds) == 6 and ds.labels == [1, 1, 1, 0, 0, 0]
    clips, label, who = ds[0]
    assert len(clips) == 1 and clips[0].shape == (3, 8, 32, 32) and clips[0].dtype == torch.float32
    assert label.item() == 1.0 and who == "asd0"
    raw = recs[0].clips["side"][0]  # BGR uint8
    expected = (raw[..., ::-1].transpose(3, 0, 1, 2) / 255.0 - 0.45) / 0.225
    np.testing.assert_allclose(clips[0].numpy(), expected, atol=1e-5)


def test_loss_decreases():
    """A few epochs of Adam on separable windows lower the training loss (late fusion, width 8, 32 px)."""
    torch.manual_seed(0)
    tcfg = _tcfg()
    model = LogitModel(build_model(tcfg))
    ds = WindowDataset(_recordings(windows=4))
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    criterion = torch.nn.BCEWithLogitsLoss()
    losses = [train_one_epoch(model, criterion, optimizer, loader, CPU, e, progress=False) for e in range(1, 5)]
    assert losses[-1] < 0.7 * losses[0], losses
    ev = evaluate(model, criterion, loader, CPU, progress=False)
    assert ev["window"]["n"] == 16 and len(ev["probs"]) == 16
    assert ev["window"]["accuracy"] == 1.0


def test_checkpoint_round_trip(tmp_path):
    """A trained model saved with its spec loads back through load_checkpoint and scores the same."""
    torch.manual_seed(0)
    tcfg = _tcfg(variant="gated")
    model = build_model(tcfg)
    clip = torch.randn(2, 3, 8, 32, 32)
    model.eval()
    spec = ModelSpec(variant="gated", dropout_rate=0.0, input_px=32, frames=8, width=8)
    save_checkpoint(tmp_path / "m.pt", model, spec, meta={"synthetic": True, "fold": 1})
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.spec == spec and loaded.meta == {"synthetic": True, "fold": 1}
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(clip, clip), model(clip, clip))


def test_train_fold_writes_best_checkpoint(tmp_path):
    """train_fold saves fold{k}/best.pt with its spec and provenance; it rebuilds from the file alone."""
    tcfg = _tcfg(epochs_max=2)
    result = train_fold(FOLD, _recordings(), tcfg, tmp_path, signature="sig", progress=False,
                        meta={"synthetic": True, "manifest": "m.csv"})
    assert result["epochs_run"] == 2 and len(result["history"]) == 2
    ckpt = load_checkpoint(tmp_path / "fold1" / "best.pt")
    assert ckpt.spec == ModelSpec(variant="late", dropout_rate=0.0, input_px=32, frames=8, width=8)
    meta = ckpt.meta
    assert meta["synthetic"] is True and meta["manifest"] == "m.csv" and meta["fold"] == 1
    assert meta["epoch"] == result["best_epoch"]
    assert meta["val_participants"] == ["asd1", "non3"]
    assert meta["val_metrics"] == result["window"] and meta["val_loss"] == pytest.approx(result["best_val_loss"])
    saved = json.loads((tmp_path / "fold1" / "result.json").read_text())
    assert saved["best_epoch"] == result["best_epoch"] and saved["window"]["n"] == 6


def test_resume_continues_from_saved_epoch(tmp_path, monkeypatch):
    """2 epochs, then --resume to 3: only epoch 3 runs, and the history equals an uninterrupted 3-epoch run."""
    recs = _recordings()
    tcfg = _tcfg(dropout_rate=0.3)  # dropout draws random numbers: RNG states must be restored too
    straight = train_fold(FOLD, recs, tcfg, tmp_path / "a", signature="s", progress=False)

    train_fold(FOLD, recs, _tcfg(dropout_rate=0.3, epochs_max=2), tmp_path / "b", signature="s", progress=False)
    state = torch.load(tmp_path / "b" / "fold1" / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2

    ran = []
    real = train_mod.train_one_epoch
    monkeypatch.setattr(train_mod, "train_one_epoch", lambda *a, **k: ran.append(a[5]) or real(*a, **k))
    resumed = train_fold(FOLD, recs, tcfg, tmp_path / "b", signature="s", resume=True, progress=False)
    assert ran == [3]
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    for key in ("train_loss", "val_loss"):
        assert [h[key] for h in resumed["history"]] == pytest.approx([h[key] for h in straight["history"]], abs=1e-5)

    ran.clear()  # a finished fold is skipped
    again = train_fold(FOLD, recs, tcfg, tmp_path / "b", signature="s", resume=True, progress=False)
    assert ran == [] and again["epochs_run"] == 3


def test_pretrained_errors(tmp_path):
    """Kinetics weights need width 64 and an existing file: one-line errors before any work."""
    from core.configtools import ConfigError
    from training.engine import load_pretrained

    assert load_pretrained(_tcfg()) is None
    with pytest.raises(ConfigError, match="fit width 64"):
        load_pretrained(_tcfg(pretrained=str(tmp_path / "k.pyth")))
    with pytest.raises(ConfigError, match="pretrained Kinetics weights not found"):
        load_pretrained(_tcfg(width=64, pretrained=str(tmp_path / "k.pyth")))


def test_resume_refuses_other_settings(tmp_path):
    """last.pt of a run with other settings is not resumed (one-line error)."""
    from core.configtools import ConfigError

    train_fold(FOLD, _recordings(), _tcfg(epochs_max=1), tmp_path, signature="one", progress=False)
    with pytest.raises(ConfigError, match="belongs to a run with other settings"):
        train_fold(FOLD, _recordings(), _tcfg(epochs_max=2), tmp_path, signature="two", resume=True, progress=False)


def test_early_stopping_on_validation_loss(tmp_path, monkeypatch):
    """Patience 2: stops two epochs after the lowest validation loss, and reports that best epoch."""
    real = train_mod.evaluate
    val_losses = iter([0.6, 0.4, 0.5, 0.45, 0.3, 0.2])

    def fake_evaluate(*args, **kwargs):
        ev = real(*args, **kwargs)
        ev["loss"] = next(val_losses)
        return ev

    monkeypatch.setattr(train_mod, "evaluate", fake_evaluate)
    result = train_fold(FOLD, _recordings(), _tcfg(epochs_max=10, patience=2), tmp_path, progress=False)
    assert result["epochs_run"] == 4 and result["stopped_early"] is True
    assert result["best_epoch"] == 2 and result["best_val_loss"] == 0.4
    assert load_checkpoint(tmp_path / "fold1" / "best.pt").meta["epoch"] == 2


def test_cross_validation_writes_report(tmp_path):
    """Two participant-wise folds end to end: a checkpoint per fold and the report over both."""
    report = run_cross_validation(_recordings(), _tcfg(epochs_max=1), tmp_path, info={"synthetic": True},
                                  progress=False)
    for k in (1, 2):
        assert (tmp_path / f"fold{k}" / "best.pt").is_file()
    run = json.loads((tmp_path / "run.json").read_text())
    vals = [set(f["val"]) for f in run["folds"]]
    assert vals[0].isdisjoint(vals[1]) and vals[0] | vals[1] == {"asd0", "asd1", "non2", "non3"}
    accs = [f["window"]["accuracy"] for f in report["folds"]]
    assert report["mean_std"]["window"]["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert "synthetic" in (tmp_path / "table.md").read_text()
