"""ConvAutoencoder shapes and errors; the conv experiment on tiny synthetic images; PCA by Gram matrix."""

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from aecore.conv import ConvAutoencoder, conv_output_side
from aecore.conv import LINEAR_LR_SCALE, Refine
from aecore.conv_experiment import (ConvSettings, load_conv_checkpoint, object_mask, paired_bootstrap, pca_reconstruct,
                                    pca_val_mse, per_image_mse, psnr, reconstruct, run_conv_experiment,
                                    with_mirrors)
from aecore.errors import AecoreError
from aecore.images import load_images, split_by_species
from aecore.linear import PCA, mse
from aecore.train import FitConfig, fit


pytestmark = pytest.mark.usefixtures("private_cache")


TINY = ConvSettings(size=16, latent_dim=4, widths=(4, 8), num_epochs=2, batch_size=8, val_fraction=0.25,
                    test_fraction=0.25, refine=4, device="cpu")


@pytest.mark.parametrize("norm, upsample", [("batch", "nearest"), ("group", "transpose"), ("none", "nearest")])
def test_shapes_at_every_stage(norm, upsample):
    model = ConvAutoencoder(latent_dim=5, widths=(4, 8, 16), size=32, norm=norm, upsample=upsample)
    x = torch.rand(3, 3, 32, 32)
    h = x
    sides = []
    for layer in model.encoder:
        h = layer(h)
        if isinstance(layer, torch.nn.MaxPool2d):
            sides.append(h.shape[-1])
    assert sides == [16, 8, 4] and h.shape == (3, 5)
    z = model.encode(x)
    assert z.shape == (3, 5) and model.decode(z).shape == x.shape and model(x).shape == x.shape


def test_conv_output_side_matches_torch():
    for side, k, s, p in [(64, 3, 1, 1), (64, 2, 2, 0), (33, 5, 2, 2), (7, 3, 2, 0)]:
        out = torch.nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, side, side))
        assert out.shape[-1] == conv_output_side(side, k, s, p)


def test_untrained_model_predicts_the_mean_image_offset():
    model = ConvAutoencoder(latent_dim=3, widths=(4,), size=8)
    torch.nn.init.zeros_(model.decoder[-2].weight)
    torch.nn.init.zeros_(model.decoder[-2].bias)
    x = torch.rand(6, 3, 8, 8)
    model.init_from_data(x)
    torch.testing.assert_close(model(x[:2]), x.mean(0, keepdim=True).expand(2, -1, -1, -1))


@pytest.mark.parametrize("kwargs, message", [
    (dict(latent_dim=0), "latent_dim"), (dict(widths=(8, 0)), "width"), (dict(size=20, widths=(4, 8, 16)), "divisible"),
    (dict(norm="layer"), "norm"), (dict(upsample="bilinear"), "upsample"), (dict(widths=()), "divisible"),
])
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(AecoreError, match=message):
        ConvAutoencoder(**{"latent_dim": 4, "widths": (4, 8), "size": 16, **kwargs})


def test_init_from_data_checks_the_shape():
    with pytest.raises(AecoreError, match="do not fit"):
        ConvAutoencoder(latent_dim=4, widths=(4,), size=8).init_from_data(torch.rand(2, 3, 16, 16))


def test_fit_trains_the_conv_model_and_loss_falls():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16).repeat(32, 1, 1, 1) + 0.05 * torch.rand(32, 3, 16, 16)
    model = ConvAutoencoder(latent_dim=4, widths=(4, 8), size=16)
    history = fit(model, x, x[:8], FitConfig(num_epochs=15, batch_size=8, lr=3e-3, device="cpu", progress=False))
    assert history.val_loss[-1] < 0.5 * history.val_loss[0]


def test_pca_by_gram_matrix_matches_svd_pca():
    rng = np.random.default_rng(0)
    x_tr, x_val = rng.random((30, 3, 4, 4)), rng.random((7, 3, 4, 4))
    got = pca_val_mse(x_tr, x_val, [1, 5, 20])
    for k, value in got.items():
        pca = PCA.fit(x_tr.reshape(30, -1), k)
        flat = x_val.reshape(7, -1)
        assert value == pytest.approx(mse(flat, pca.reconstruct(flat)), rel=1e-9)
    with pytest.raises(AecoreError, match="needs more than"):
        pca_val_mse(x_tr, x_val, [30])


def test_psnr_and_mirrors():
    assert psnr(1e-3) == pytest.approx(30.0)
    x = np.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)
    both = with_mirrors(x)
    assert both.shape == (4, 3, 2, 2) and (both[2, :, :, 0] == x[0, :, :, 1]).all()


def test_experiment_runs_fairly_and_checkpoint_round_trips(species_folder, tmp_path):
    settings = replace(TINY, data=str(species_folder))
    path = tmp_path / "tiny.pt"
    result = run_conv_experiment(settings, save=path, command="test", progress=False)
    split = split_by_species(load_images(str(species_folder), 16), 0.25, 0, test_fraction=0.25)
    assert (result["n_train"], result["n_val"], result["n_test"]) == (len(split.x_train), 3, 3) == (6, 3, 3)
    assert result["n_train_seen"] == 12  # mirrored training species only
    x_seen = with_mirrors(split.x_train)
    for name, x in (("val", split.x_val), ("test", split.x_test)):
        x_pca = pca_reconstruct(x_seen, x, 4)
        assert result[f"pca_{name}_mse"] == pytest.approx(per_image_mse(x, x_pca).mean())
        assert result[f"pca_{name}_object_mse"] == pytest.approx(per_image_mse(x, x_pca, object_mask(x)).mean())
    # clipped PCA is never worse than unclipped PCA, whose error pca_val_mse computes in closed form
    assert result["pca_val_mse"] <= pca_val_mse(x_seen, split.x_val, [4])[4] + 1e-12
    assert result["val_psnr"] == pytest.approx(psnr(result["val_mse"]))
    record = json.loads((tmp_path / "tiny.pt.json").read_text())
    assert record["command"] == "test" and record["metrics"]["val_mse"] == result["val_mse"]
    assert len(record["history"]["epoch_seconds"]) == 2
    model, saved, _ = load_conv_checkpoint(path)  # no training images needed: everything is stored
    assert saved == settings
    from aecore.conv_experiment import evaluate_conv
    again = evaluate_conv(model, split, saved)
    for key in ("val_mse", "test_mse", "val_object_mse", "test_object_mse", "train_mse"):
        assert again[key] == pytest.approx(result[key], abs=1e-7)
    conv_weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights)
    default = copy.deepcopy(model).to(memory_format=torch.contiguous_format)  # as trained
    first_conv = next(m for m in default.modules() if isinstance(m, torch.nn.Conv2d))
    assert not first_conv.weight.is_contiguous(memory_format=torch.channels_last)
    x_hat = reconstruct(model, split.x_val)
    assert np.abs(x_hat - reconstruct(default, split.x_val)).max() < 1e-5
    path.write_bytes(path.read_bytes()[:-10])  # damaged: sha256 no longer matches
    with pytest.raises(AecoreError, match="sha256.*make it again with `test`"):
        load_conv_checkpoint(path)
    with pytest.raises(AecoreError, match="none.pt and .*none.pt.json not found.*aecore train"):
        load_conv_checkpoint(tmp_path / "none.pt")


def test_paired_bootstrap_finds_a_real_difference_and_not_a_fake_one():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.01, 0.03, 200)
    better = paired_bootstrap(b * 0.9 + rng.normal(0, 1e-4, 200), b)
    assert better["diff_high"] < 0 and better["ratio_high"] < 1 and better["ratio"] == pytest.approx(0.9, abs=0.01)
    noise = paired_bootstrap(b + rng.normal(0, 1e-3, 200), b)
    assert noise["diff_low"] < 0 < noise["diff_high"], "pure noise should not look like a difference"
    with pytest.raises(AecoreError, match="same length"):
        paired_bootstrap(b, b[:10])


def test_object_mask_and_masked_error():
    x = np.ones((1, 3, 4, 4), np.float32)
    x[0, :, 1:3, 1:3] = 0.2  # a 2x2 object on white
    mask = object_mask(x)
    assert mask.sum() == 4 and mask[0, 1:3, 1:3].all()
    x_hat = x.copy()
    x_hat[0, :, 0, 0] = 0.0  # error on the background only
    assert per_image_mse(x, x_hat, mask)[0] == 0.0 and per_image_mse(x, x_hat)[0] == pytest.approx(1 / 16)


def test_encoder_and_decoder_alone_are_the_whole_maps():
    """Tools that call ``model.encoder`` and ``model.decoder`` (latent sliders) see the mean too."""
    model = ConvAutoencoder(latent_dim=3, widths=(4,), size=8).eval()
    x = torch.rand(4, 3, 8, 8)
    model.init_from_data(x + 1.0)
    torch.testing.assert_close(model.decoder(model.encoder(x)), model(x))
    torch.testing.assert_close(model.mean, x.mean(0, keepdim=True) + 1.0)
    state = model.state_dict()
    fresh = ConvAutoencoder(latent_dim=3, widths=(4,), size=8).eval()
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), model(x))


def test_untrained_linear_path_model_is_pca_and_stores_its_weights():
    """init_from_data starts W at PCA and zeroes both conv paths' last layers: the model *is* PCA."""
    torch.manual_seed(0)
    x = torch.rand(40, 3, 8, 8)
    model = ConvAutoencoder(latent_dim=5, widths=(4,), size=8, linear_path=True, refine=4).init_from_data(x).eval()
    pca = PCA.fit(x.reshape(40, -1).double().numpy(), 5)
    expected = pca.reconstruct(x.reshape(40, -1).double().numpy())
    with torch.no_grad():
        got = model(x).reshape(40, -1).double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert model.config()["linear_path"] is True
    assert any(key.endswith("weight") and v.shape == (5, 192) for key, v in model.state_dict().items())


def test_refine_starts_as_the_identity():
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(Refine(3, 4)(x), x)


def test_linear_path_learns_at_its_own_rate():
    """fit honours optimizer_groups: with a constant rate W moves LINEAR_LR_SCALE times as far."""
    torch.manual_seed(0)
    x = torch.rand(32, 3, 8, 8)
    model = ConvAutoencoder(latent_dim=4, widths=(4,), size=8, linear_path=True).init_from_data(x)
    w0 = model.linear.weight.detach().clone()
    first = model.decoder[0].branches[0][0].weight.detach().clone()  # a conv-path weight
    fit(model, x, config=FitConfig(num_epochs=1, batch_size=8, lr=0.1, schedule="constant", progress=False))
    steps = 4
    assert (model.linear.weight - w0).abs().max() <= steps * 0.1 * LINEAR_LR_SCALE * 1.01
    assert (model.decoder[0].branches[0][0].weight - first).abs().max() > 0.1  # the conv path moves at the full rate


def test_cli_train_conv_prints_the_same_keys_as_other_train_runs(species_folder, capsys):
    from aecore.cli import main

    code = main(["train", "--model", "conv", "--data", str(species_folder), "--latent", "4", "--size", "16",
                 "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    mlp_keys = {"latent_dim", "model", "n_train", "n_val", "epochs", "train_mse", "val_mse", "pca_val_mse",
                "ratio_to_pca", "seconds", "device", "checkpoint"}
    assert mlp_keys <= set(out) and out["model"] == "conv" and out["size"] == 16
    assert out["pca_val_mse"] == pytest.approx(out["val_mse"] / out["ratio_to_pca"])


@pytest.mark.parametrize("argv, message", [
    (["--data", "/no/such/folder", "--latent", "4"], "folder not found"),
    (["--data", "{folder}", "--latent", "4", "--size", "20"], "divisible"),
])
def test_cli_train_conv_bad_input_is_one_error_line(species_folder, capsys, argv, message):
    from aecore.cli import main

    argv = [a.replace("{folder}", str(species_folder)) for a in argv]
    assert main(["train", "--model", "conv", "--device", "cpu", "--json", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_linear_path_stays_float32_under_autocast():
    model = ConvAutoencoder(latent_dim=3, widths=(4,), size=8, linear_path=True).init_from_data(torch.rand(10, 3, 8, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = model.linear(torch.rand(2, 3, 8, 8))
    assert z.dtype == torch.float32


def test_cli_plain_flag_and_conv_sweep(species_folder, capsys, tmp_path):
    from aecore.cli import main

    path = tmp_path / "plain.pt"
    code = main(["train", "--model", "conv", "--plain", "--data", str(species_folder), "--latent", "3", "--size", "16",
                 "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--json", "--save", str(path)])
    assert code == 0
    record = json.loads((tmp_path / "plain.pt.json").read_text())
    assert record["settings"]["linear_path"] is False and "--plain" in record["command"]
    capsys.readouterr()
    assert main(["sweep", "--model", "conv", "--data", str(species_folder), "--latent", "2,4", "--seeds", "1", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["latent_dim"] for r in rows] == [2, 4] and all(r["model"] == "conv" for r in rows)
    assert rows[1]["pca_val_mse"] <= rows[0]["pca_val_mse"] and len(rows[0]["histories"]) == 1
    assert main(["sweep", "--model", "conv", "--data", str(species_folder), "--latent", "2,40", "--json"]) == 2
    assert "needs more than 40 training images" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [({"refine": -1}, "refine"), ({"refine": 2.5}, "refine"),
                                             ({"linear_lr_scale": -0.1}, "linear_lr_scale")])
def test_bad_refine_or_linear_rate_is_one_clear_error(kwargs, message):
    with pytest.raises(AecoreError, match=message):
        ConvAutoencoder(latent_dim=3, widths=(4,), size=8, linear_path=True, **kwargs)


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_plain_flag_without_conv_is_one_clear_error(command, capsys):
    from aecore.cli import main

    assert main([command, "--data", "digits", "--latent", "2", "--plain"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --plain belongs to --model conv") and err.count("\n") == 1
