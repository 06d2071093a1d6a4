"""The static latent explorer: exported weights rebuild the decoder exactly; bad input is refused."""

import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from aecore.errors import AecoreError
from aecore.explorer import decoder_from_spec, export_decoder, latent_explorer, to_pixels
from aecore.latent import latent_axes
from aecore.models import MLPAutoencoder

ACTIVATIONS = [nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(0.7), nn.Tanh(), nn.GELU(), nn.GELU(approximate="tanh"),
               nn.SiLU(), nn.Sigmoid(), nn.Softplus(2.0, 5.0), nn.Identity(), nn.Dropout(0.5)]


class Decoderless(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 64)


class ConvDecoder(nn.Module):
    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.decoder = nn.Sequential(nn.Linear(2, 16), nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 1, 3, padding=1))


def _model(latent_dim=2, hidden=(16,), activation="relu"):
    torch.manual_seed(0)
    return MLPAutoencoder(64, latent_dim, hidden, activation).eval()


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: repr(a))
def test_every_supported_activation_round_trips_exactly(act):
    torch.manual_seed(1)
    decoder = nn.Sequential(nn.Linear(3, 5), act, nn.Sequential(nn.Linear(5, 4), nn.Sigmoid())).eval()
    rebuilt = decoder_from_spec(export_decoder(decoder))
    z = torch.randn(7, 3) * 3
    assert torch.equal(rebuilt(z), decoder(z))


def test_float16_halves_the_weights_and_stays_close():
    model = _model(hidden=(64, 32))
    e32, e16 = latent_explorer(model), latent_explorer(model, dtype="float16")
    w32 = sum(len(l["weight"]) for l in e32.spec["layers"] if l["kind"] == "linear")
    w16 = sum(len(l["weight"]) for l in e16.spec["layers"] if l["kind"] == "linear")
    assert abs(w16 / w32 - 0.5) < 0.01
    z = torch.randn(50, 2)
    x_hat16 = decoder_from_spec(e16.spec["layers"], "float16")(z)
    assert (x_hat16 - model.decoder(z)).abs().max() < 5e-3


def test_html_is_self_contained_with_the_packaged_script():
    model = _model()
    e = latent_explorer(model, x=np.random.default_rng(0).random((30, 64)), labels=np.arange(30) % 3)
    html = e._repr_html_()
    assert "window.aecoreLatentExplorer = function" in html  # the JS file, inlined
    assert not re.search(r"<script[^>]+src=", html), "the explorer must not load scripts from anywhere"
    blob = re.search(r'<script type="application/json" class="aecore-explorer-spec">(.*?)</script>', html).group(1)
    spec = json.loads(blob)
    assert spec["latent_dim"] == 2 and spec["image_shape"] == [8, 8] and spec["map"]["names"] == ["0", "1", "2"]
    assert [ex["name"].split()[0] for ex in spec["examples"]] == ["0", "1", "2"]
    assert len(html) < 30_000


def test_dom_ids_are_unique_and_deterministic():
    a, b = latent_explorer(_model()), latent_explorer(_model())
    assert a.dom_id != b.dom_id
    assert a.dom_id.rsplit("-", 1)[0] == b.dom_id.rsplit("-", 1)[0]  # same weights, same hash
    other = latent_explorer(_model(activation="tanh"))
    assert other.dom_id.rsplit("-", 1)[0] != a.dom_id.rsplit("-", 1)[0]


def test_wide_latents_get_principal_direction_sliders():
    x = np.random.default_rng(0).random((40, 64))
    e = latent_explorer(_model(latent_dim=12), x=x, max_sliders=4)
    assert e.spec["axes"]["names"] == ["PC1", "PC2", "PC3", "PC4"] and e.spec["map"] is None
    axes = latent_axes(12, np.random.default_rng(1).normal(size=(40, 12)), max_sliders=4)
    z = axes.origin + 0.5 * axes.directions[1]
    np.testing.assert_allclose(axes.values(z), [0, 0.5, 0, 0], atol=1e-12)
    np.testing.assert_allclose(axes.to_z(axes.values(z)), z, atol=1e-12)


def test_to_pixels_matches_gray_r_and_rgb():
    assert to_pixels(np.array([0.0, 0.5, 1.0, 2.0]), (2, 2))[..., 0].tolist() == [[255, 128], [0, 0]]
    rgb = to_pixels(np.array([1.0, 0.0, 0.0]), (3, 1, 1))
    assert rgb.tolist() == [[[255, 0, 0, 255]]]


def test_save_writes_a_standalone_page(tmp_path):
    path = tmp_path / "explorer.html"
    latent_explorer(_model()).save(path)
    assert path.read_text().startswith("<!doctype html>")


@pytest.mark.parametrize("call, message", [
    (lambda: latent_explorer(Decoderless()), "has no .decoder"),
    (lambda: latent_explorer(ConvDecoder(), image_shape=(4, 4)), "has a Unflatten"),
    (lambda: latent_explorer(_model(), image_shape=(7, 7)), "image_shape (7, 7) holds 49 pixels"),
    (lambda: latent_explorer(_model(), image_shape=(2, 4, 8)), "must be (H, W), (1, H, W) or (3, H, W)"),
    (lambda: latent_explorer(_model(latent_dim=300, hidden=(4,))), "too large for the browser explorer"),
    (lambda: latent_explorer(_model(latent_dim=12)), "pass codes of real data"),
    (lambda: latent_explorer(_model(), z=np.zeros((5, 2)), labels=[1, 2]), "one label per row"),
    (lambda: latent_explorer(_model(), x=np.zeros((5, 64)), z=np.zeros((5, 2))), "not both"),
    (lambda: latent_explorer(_model(), dtype="int8"), "'float32' or 'float16'"),
    (lambda: latent_explorer(_model(hidden=(2048, 1024))), "parameters, more than"),
])
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(AecoreError, match=re.escape(message)):
        call()
