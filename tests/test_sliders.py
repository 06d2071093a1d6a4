"""Live sliders: moving a slider redraws the same image widget with decoder(z); bad input is refused."""

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from aecore.errors import AecoreError
from aecore.explorer import to_pixels
from aecore.models import MLPAutoencoder
from aecore.sliders import latent_sliders


def _model(latent_dim=2):
    torch.manual_seed(0)
    return MLPAutoencoder(64, latent_dim, hidden=(16,)).eval()


def _png_pixels(png, scale):
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return img[::scale, ::scale]  # one screen pixel per image pixel


def test_moving_a_slider_redraws_in_place_with_the_decoded_image():
    model = _model()
    x = np.random.default_rng(0).random((20, 64))
    ui = latent_sliders(model, x=x, labels=np.arange(20) % 4, scale=4)
    image, first = ui.image, ui.image.value
    ui.sliders[1].value = ui.sliders[1].max
    assert ui.image is image and ui.image.value != first, "the same Image widget must get new bytes"
    with torch.no_grad():
        x_hat = model.decoder(torch.tensor(ui.z, dtype=torch.float32)[None])[0].numpy()
    assert np.array_equal(_png_pixels(ui.image.value, 4), to_pixels(x_hat, (8, 8))[..., :3])
    assert ui.z[1] == pytest.approx(ui.sliders[1].max)


def test_an_example_starts_the_sliders_from_its_code_with_one_redraw():
    model = _model()
    x = np.random.default_rng(0).random((20, 64))
    ui = latent_sliders(model, x=x, labels=np.arange(20) % 4)
    assert [label for label, _ in ui.examples.options[1:]] == ["0 (row 0)", "1 (row 1)", "2 (row 2)", "3 (row 3)"]
    before = ui.redraws
    ui.examples.value = ui.examples.options[2][1]
    with torch.no_grad():
        z1 = model.encoder(torch.tensor(x[1:2], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(ui.z, z1, atol=1e-6)
    assert ui.redraws == before + 1


def test_wide_latents_slide_along_principal_directions_keeping_the_example():
    model = _model(latent_dim=10)
    x = np.random.default_rng(0).random((30, 64))
    ui = latent_sliders(model, x=x, max_sliders=3)
    assert ui.names == ("PC1", "PC2", "PC3") and len(ui.sliders) == 3
    z0 = ui.axes.origin + 0.3 * ui.axes.directions[0] + np.linspace(-0.1, 0.1, 10)
    ui.set_z(z0)
    np.testing.assert_allclose(ui.z, z0, atol=1e-12)  # the part off the slider directions is kept
    ui.sliders[2].value += 1.0
    np.testing.assert_allclose(ui.z, z0 + ui.axes.directions[2] * 1.0, atol=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda: latent_sliders(nn.Linear(2, 64)), "has no .decoder"),
    (lambda: latent_sliders(_model(), image_shape=(4, 4)), "holds 16 pixels but the decoder outputs 64"),
    (lambda: latent_sliders(_model(latent_dim=12)), "pass codes of real data"),
    (lambda: latent_sliders(_model(), x=np.zeros((4, 64)), labels=[1]), "one label per row"),
    (lambda: latent_sliders(_model(), max_sliders=0), "max_sliders must be a positive integer"),
])
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(AecoreError, match=re.escape(message)):
        call()
