"""aecore.train: determinism, agreement with a hand-written loop, guards, early stopping, checkpoints."""

import os

import numpy as np
import pytest
import torch
from torch import nn

import aecore
from aecore.errors import AecoreError
from aecore.models import MLPAutoencoder
from aecore.train import FitConfig, evaluate, fit, get_device, load_checkpoint, save_checkpoint, set_seed

RNG = np.random.default_rng(0)
X = RNG.random((96, 12))  # small data in [0, 1]
X_VAL = RNG.random((20, 12))


def quick(**changes) -> FitConfig:
    return FitConfig(**{"num_epochs": 4, "batch_size": 16, "lr": 3e-3, "device": "cpu", "progress": False, **changes})


def trained(seed=0, **changes):
    set_seed(seed)
    model = MLPAutoencoder(12, 2, (16,))
    return model, fit(model, X, X_VAL, quick(seed=seed, **changes))


def test_same_seed_gives_the_same_losses_bit_for_bit():
    (m1, h1), (m2, h2) = trained(), trained()
    assert h1.train_loss == h2.train_loss and h1.val_loss == h2.val_loss
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    _, h3 = trained(seed=1)
    assert h3.train_loss != h1.train_loss


def test_set_seed_seeds_python_numpy_and_torch():
    import random

    set_seed(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


@pytest.mark.parametrize("fused", [False, True])
def test_fit_agrees_with_a_hand_written_loop(fused):
    """The loop Chapter 2 writes by hand: same seed, same batches, same losses, exactly."""
    set_seed(0)
    model = MLPAutoencoder(12, 2, (16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, fused=fused)
    x_train, x_val = torch.tensor(X, dtype=torch.float32), torch.tensor(X_VAL, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    train_curve, val_curve = [], []
    for _ in range(4):
        order, total = torch.randperm(len(x_train), generator=generator), 0.0
        for i in range(0, len(x_train), 16):
            x = x_train[order[i:i + 16]]
            loss = nn.functional.mse_loss(model(x), x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        train_curve.append(total / len(x_train))
        with torch.no_grad():
            val_curve.append(nn.functional.mse_loss(model(x_val), x_val).item())
    _, history = trained(schedule="constant", fused=fused)
    assert history.train_loss == train_curve
    assert history.val_loss == val_curve
    _, other = trained(schedule="constant", fused=not fused)
    assert other.train_loss != train_curve  # the kernels round differently: the test can tell them apart


def test_onecycle_warmup_sets_where_the_rate_peaks():
    for warmup in (0.1, 0.5):
        _, h = trained(num_epochs=10, schedule="onecycle", warmup=warmup)
        assert int(np.argmax(h.lr)) == round(10 * warmup)  # lr at the start of each epoch


def test_history_and_schedules():
    _, h = trained(num_epochs=6, schedule="onecycle")
    assert len(h.train_loss) == len(h.val_loss) == len(h.lr) == len(h.epoch_seconds) == 6
    assert h.train_loss[-1] < h.train_loss[0] and h.seconds > 0
    assert max(h.lr) > h.lr[0] and h.lr[-1] < max(h.lr)  # warm up, then anneal
    _, h = trained(schedule="constant")
    assert set(h.lr) == {3e-3}
    _, h = trained(schedule="cosine")
    assert h.lr == sorted(h.lr, reverse=True)


def test_no_validation_set_is_fine_and_batch_larger_than_data_is_clipped():
    set_seed(0)
    model = MLPAutoencoder(12, 2, (8,))
    h = fit(model, X[:10], None, quick(batch_size=1000))
    assert len(h.train_loss) == 4 and h.val_loss == []


def test_early_stopping_restores_the_best_weights():
    set_seed(0)
    model = MLPAutoencoder(12, 2, (64,))
    x_val = 1.0 - X_VAL  # a different distribution: validation error rises as the model overfits
    h = fit(model, X[:8], x_val, quick(num_epochs=200, batch_size=8, lr=1e-2, patience=3))
    assert h.stopped_early and len(h.val_loss) < 200
    assert h.best_epoch == int(np.argmin(h.val_loss)) + 1
    assert len(h.val_loss) == h.best_epoch + 3
    assert evaluate(model, x_val) == min(h.val_loss)


def test_a_callback_can_stop_training():
    seen = []
    set_seed(0)
    model = MLPAutoencoder(12, 2, (8,))
    h = fit(model, X, X_VAL, quick(num_epochs=10), callbacks=[lambda epoch, hist, m: seen.append(epoch) or epoch == 3])
    assert seen == [1, 2, 3] and len(h.train_loss) == 3 and h.stopped_early


class _Diverging(nn.Module):
    """A linear map with no sigmoid: a huge learning rate sends its loss to infinity."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(12, 12)

    def forward(self, x):
        return self.linear(x)


def test_nan_guard_names_the_epoch_and_suggests_a_lower_lr():
    torch.manual_seed(0)
    with pytest.raises(AecoreError, match=r"epoch \d+.*too high.*try 0\.001 or lower"):
        fit(_Diverging(), X, X_VAL, quick(lr=1e20, num_epochs=20, schedule="constant"))


@pytest.mark.parametrize("x, words", [
    (np.ones((10, 5)), "cannot take x_train of shape"),
    (np.full((10, 12), np.nan), "NaN or infinite"),
    (np.ones((0, 12)), "at least one sample"),
    (np.ones(12), "at least one sample"),
])
def test_bad_data_is_a_clear_error_not_a_torch_one(x, words):
    with pytest.raises(AecoreError, match=words):
        fit(MLPAutoencoder(12, 2, (8,)), x, None, quick())


def test_validation_rows_must_match_training_rows():
    with pytest.raises(AecoreError, match="x_val rows"):
        fit(MLPAutoencoder(12, 2, (8,)), X, np.ones((5, 7)), quick())


@pytest.mark.parametrize("changes, words", [
    ({"lr": 0}, "lr must be a positive number"), ({"lr": -1e-3}, "lr must be a positive number"), ({"lr": float("nan")}, "lr"),
    ({"batch_size": 0}, "batch_size"), ({"num_epochs": -1}, "num_epochs"), ({"num_epochs": 2.5}, "num_epochs"),
    ({"schedule": "linear"}, "unknown schedule"), ({"patience": 0}, "patience"), ({"weight_decay": -1}, "weight_decay"),
    ({"warmup": 0}, "warmup"), ({"warmup": 1.0}, "warmup"), ({"warmup": "0.1"}, "warmup"),
])
def test_fit_config_rejects_bad_settings(changes, words):
    with pytest.raises(AecoreError, match=words):
        quick(**changes)


def test_get_device():
    assert get_device("cpu").type == "cpu"
    assert get_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(AecoreError, match="unknown device"):
        get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(AecoreError, match="not available.*'cpu'"):
            get_device("cuda")


class _TinyConv(nn.Module):
    """A 4-D (B, C, H, W) autoencoder: fit's image path (channels-last and AMP on CUDA only)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU())  # (B,3,8,8) -> (B,4,4,4)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), nn.Sigmoid())  # -> (B,3,8,8)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def test_image_path_runs_on_cpu_with_amp_switched_off_identically():
    x = torch.rand(24, 3, 8, 8)
    runs = []
    for amp in (True, False):  # on CPU `amp=True` must change nothing
        set_seed(0)
        model = _TinyConv()
        runs.append(fit(model, x, x[:6], quick(amp=amp, batch_size=8)).train_loss)
    assert runs[0] == runs[1]


def test_progress_bar_is_one_line_per_run_not_per_batch(capsys):
    set_seed(0)
    fit(MLPAutoencoder(12, 2, (8,)), X, X_VAL, quick(progress=True, num_epochs=3, batch_size=4))
    err = capsys.readouterr().err
    assert "fit" in err and "train=" in err and "val=" in err
    assert err.count("\n") <= 1  # one bar, redrawn in place with \r
    assert err.count("\r") <= 2 * 3 + 3  # a few redraws per epoch at most, not one per batch (24 per epoch)


# --- checkpoints -----------------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path):
    model, history = trained()
    path = save_checkpoint(tmp_path / "ae.pt", model, config={"hidden": (16,), "lr": 3e-3}, epoch=4,
                           metrics={"val_mse": history.val_loss[-1]})
    twin = MLPAutoencoder(12, 2, (16,))
    record = load_checkpoint(path, twin)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
    assert record["config"] == {"hidden": [16], "lr": 3e-3}
    assert record["epoch"] == 4 and record["metrics"]["val_mse"] == history.val_loss[-1]
    assert record["aecore_version"] == aecore.__version__
    assert os.listdir(tmp_path) == ["ae.pt"]  # no temporary file left behind


def test_an_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    model, _ = trained()
    path = save_checkpoint(tmp_path / "ae.pt", model, epoch=1)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ae.pt"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_corrupt_checkpoint_is_a_clear_error(tmp_path, damage):
    model, _ = trained()
    path = save_checkpoint(tmp_path / "ae.pt", model)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(500), "empty": b""}[damage])
    with pytest.raises(AecoreError, match="not a readable checkpoint"):
        load_checkpoint(path, model)


def test_foreign_or_mismatched_checkpoints_are_rejected(tmp_path):
    model, _ = trained()
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(AecoreError, match="not an aecore checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    path = save_checkpoint(tmp_path / "ae.pt", model)
    with pytest.raises(AecoreError, match="does not match this model"):
        load_checkpoint(path, MLPAutoencoder(12, 3, (16,)))
    with pytest.raises(AecoreError, match="holds a MLPAutoencoder"):
        load_checkpoint(path, _Diverging())
    with pytest.raises(AecoreError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(AecoreError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "such" / "ae.pt", model)


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    """weights_only=True: a file holding a custom Python object is refused, not executed."""
    torch.save({"format": "aecore-checkpoint-1", "payload": _Diverging()}, tmp_path / "evil.pt")
    with pytest.raises(AecoreError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_num_threads_applies_during_fit_and_is_restored():
    before, seen = torch.get_num_threads(), []
    set_seed(0)
    fit(MLPAutoencoder(12, 2, (8,)), X, None, quick(num_threads=1),
        callbacks=[lambda epoch, history, model: seen.append(torch.get_num_threads())])
    assert seen == [1, 1, 1, 1] and torch.get_num_threads() == before


# --- the experiment functions behind Chapter 2 and `aecore train` ------------------------------

def test_rate_distortion_and_knn_accuracy():
    from aecore.data import Split
    from aecore.experiments import MLPConfig, knn_accuracy, rate_distortion, train_mlp_on

    split = Split(X, X_VAL, np.arange(96) % 3, np.arange(20) % 3, "toy")
    config = MLPConfig(hidden=(8,)).with_fit(num_epochs=2, progress=False, device="cpu")
    rows = rate_distortion(split, (1, 3), config)
    assert [r["latent_dim"] for r in rows] == [1, 3] and all(r["epochs"] == 2 for r in rows)
    run = train_mlp_on(split, 3, config)
    assert run.metrics == {**rows[1], "seconds": run.metrics["seconds"]}  # seeded: the same run twice
    assert 0.0 <= knn_accuracy(X, split.y_train, X_VAL, split.y_val) <= 1.0
    with pytest.raises(AecoreError, match="needs labels"):
        knn_accuracy(X, None, X_VAL, None)
    with pytest.raises(AecoreError, match="latent_dim"):
        train_mlp_on(split, 12, config)
