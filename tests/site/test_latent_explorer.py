"""Chapter 3's latent explorer in a real browser, offline: moving a slider and clicking the latent
map redraw the canvas, and its pixels equal the PyTorch decoder's output for the page's z.

The expected pixels come from the page itself: the test reads the weights blob out of the
page, rebuilds the decoder in PyTorch (:func:`aecore.explorer.decoder_from_spec`) and decodes the
latent vector the page reports in ``data-z``. Screenshots go to ``artifacts/site/``.
"""

import json

import numpy as np
import pytest
import torch
from torch import nn

from aecore.explorer import decoder_from_spec, latent_explorer, to_pixels

PAGE = "chapters/03_latent_space.html"
TOLERANCE = 1  # in 0..255 units: JavaScript decodes in float64, PyTorch in float32, then both round


class Explorer:
    """One explorer on an opened page: its spec, the decoder rebuilt from it, and what it shows."""

    def __init__(self, offline_page, index: int = 0):
        self.p, self.page = offline_page, offline_page.page
        self.root = self.page.locator(".aecore-explorer").nth(index)
        self.root.wait_for(state="attached", timeout=20_000)
        self.page.wait_for_function("r => r.dataset.ready === '1'", arg=self.root.element_handle(), timeout=20_000)
        self.spec = json.loads(self.root.locator("script.aecore-explorer-spec").text_content())
        self.decoder = decoder_from_spec(self.spec["layers"], self.spec["dtype"])
        self.canvas = self.root.locator("canvas.aecore-image")

    def z(self) -> np.ndarray:
        return np.array(json.loads(self.root.get_attribute("data-z")))

    def pixels(self) -> np.ndarray:
        data = self.canvas.evaluate(
            "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)")
        h, w = self.spec["image_shape"][-2:]
        return np.array(data, dtype=np.int64).reshape(h, w, 4)

    def expected(self, z) -> np.ndarray:
        with torch.no_grad():
            x_hat = self.decoder(torch.tensor(z, dtype=torch.float32)[None])[0].numpy()
        return to_pixels(x_hat, tuple(self.spec["image_shape"])).astype(np.int64)

    def max_difference(self) -> int:
        """Largest |canvas - PyTorch| over all pixels and channels, for the z the page reports."""
        return int(np.abs(self.pixels() - self.expected(self.z())).max())

    def drag_slider(self, index: int, fraction: float) -> None:
        """Drag slider ``index`` with the mouse from its thumb to ``fraction`` of its width."""
        slider = self.root.locator("input[type=range]").nth(index)
        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        value = float(slider.input_value())
        low, high = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
        y = box["y"] + box["height"] / 2
        self.page.mouse.move(box["x"] + 8 + (box["width"] - 16) * (value - low) / (high - low), y)
        self.page.mouse.down()
        self.page.mouse.move(box["x"] + box["width"] * fraction, y, steps=8)
        self.page.mouse.up()

    def shot(self, name: str) -> None:
        self.root.scroll_into_view_if_needed()
        self.p.screenshot(name)


def test_chapter_3_explorer_redraws_pytorch_pixels_offline(site, open_offline):
    path = site / PAGE
    if not path.exists():
        pytest.fail(f"{PAGE} was not built: add chapters/03_latent_space to _toc.yml")
    p = open_offline(path)
    ex = Explorer(p)
    assert ex.spec["latent_dim"] == 2 and ex.spec["map"] is not None
    z0, px0 = ex.z(), ex.pixels()
    assert ex.max_difference() <= TOLERANCE
    ex.shot("03_latent_explorer_start")

    ex.drag_slider(0, 0.85)
    z1, px1 = ex.z(), ex.pixels()
    assert z1[0] != z0[0] and z1[1] == z0[1], f"dragging z1's slider should move z1 only: {z0} -> {z1}"
    assert (px1 != px0).any(), "the canvas did not change when the slider moved"
    diff_slider = ex.max_difference()
    ex.shot("03_latent_explorer_slider")

    latent_map = ex.root.locator("canvas.aecore-map")
    box = latent_map.bounding_box()
    fx, fy = 0.3, 0.25
    latent_map.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
    z2, px2 = ex.z(), ex.pixels()
    low, high = np.array(ex.spec["map"]["low"]), np.array(ex.spec["map"]["high"])
    clicked = [low[0] + fx * (high[0] - low[0]), high[1] - fy * (high[1] - low[1])]
    np.testing.assert_allclose(z2, clicked, atol=2 * (high - low).max() / box["width"])
    assert (px2 != px1).any(), "the canvas did not change when the map was clicked"
    diff_click = ex.max_difference()
    ex.shot("03_latent_explorer_map_click")
    print(f"max |canvas - PyTorch| in 0..255: slider {diff_slider}, map click {diff_click}")
    assert diff_slider <= TOLERANCE and diff_click <= TOLERANCE
    assert not p.failed_local, f"files of the site failed to load: {p.failed_local}"
    assert not p.js_errors, f"JavaScript errors: {p.js_errors}"


def test_every_activation_and_wide_latents_in_a_standalone_page(browser, open_offline, tmp_path):
    """A saved explorer page (no site needed): every activation the JavaScript implements, float16
    weights, principal-direction sliders for a 10-D code and the example dropdown."""
    torch.manual_seed(0)
    acts = [nn.ReLU(), nn.LeakyReLU(0.1), nn.ELU(), nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(),
            nn.Tanh(), nn.Softplus(beta=2.0)]
    layers = [nn.Linear(10, 12)]
    for act in acts:
        layers += [act, nn.Linear(12, 12)]
    layers += [nn.Linear(12, 48), nn.Sigmoid()]

    class Model(nn.Module):
        latent_dim = 10

        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = nn.Linear(48, 10), nn.Sequential(*layers)

    z = np.random.default_rng(0).normal(size=(50, 10)) * np.linspace(3, 0.3, 10)
    path = tmp_path / "explorer.html"
    latent_explorer(Model(), image_shape=(3, 4, 4), z=z, labels=np.arange(50) % 5, max_sliders=3,
                    dtype="float16").save(path)
    p = open_offline(path)
    ex = Explorer(p)
    assert [s.get_attribute("aria-label") for s in ex.root.locator("input[type=range]").all()] == ["PC1", "PC2", "PC3"]
    before = ex.pixels()
    ex.drag_slider(1, 0.9)
    assert (ex.pixels() != before).any()
    assert ex.max_difference() <= TOLERANCE
    ex.root.locator("select.aecore-examples").select_option(index=3)  # "2 (row 2)"
    np.testing.assert_allclose(ex.z(), z[2], atol=1e-5)
    assert ex.max_difference() <= TOLERANCE
    ex.shot("standalone_explorer_rgb_float16")
    assert not p.js_errors, f"JavaScript errors: {p.js_errors}"
