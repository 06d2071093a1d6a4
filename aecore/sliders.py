"""Live latent sliders for a running kernel (Jupyter, Colab): move ``z``, see ``decoder(z)``.

Introduced in Chapter 3, "What the latent space represents". One ``FloatSlider`` per latent
coordinate (for wider latents, per leading principal direction of the codes; see
:func:`aecore.latent.latent_axes`), an ``ipywidgets.Image`` whose PNG bytes are replaced in place
on every move (no new figures, no flicker) and a dropdown to start from a real example's code.
In the static book there is no kernel: use :func:`aecore.explorer.latent_explorer` there.
"""

from __future__ import annotations

import io

import numpy as np

from aecore.errors import AecoreError
from aecore.explorer import to_pixels
from aecore.latent import check_image_shape, decode, encode, get_decoder, latent_axes, latent_dim_of


def png_bytes(x_hat, image_shape, scale: int = 16) -> bytes:
    """One decoded image as PNG bytes, ``scale`` screen pixels per image pixel (nearest neighbour).

    >>> png_bytes(np.zeros(64), (8, 8), scale=2)[:4]
    b'\\x89PNG'
    """
    from PIL import Image

    rgba = to_pixels(x_hat, image_shape)  # (H, W, 4), the same pixels the browser explorer draws
    h, w = rgba.shape[:2]
    img = Image.fromarray(rgba[..., :3]).resize((w * scale, h * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class LatentSliders:
    """Sliders over a model's latent space, redrawing ``decoder(z)`` in place as they move.

    Build it with :func:`latent_sliders`. ``.z`` is the current code, ``.x_hat`` its decoded
    image; ``.set_z(z)`` starts the sliders from a code (as the example dropdown does).
    The last expression of a cell displays ``.widget``. Names and the readout are ``HTML``
    widgets, not ``description``/``Label``: in a static page those ask the embed manager to
    typeset with the MathJax 2 API, which fails under MathJax 3.
    """

    def __init__(self, model, image_shape, axes, examples, scale: int):
        import ipywidgets as widgets

        self.model, self.image_shape, self.axes, self.scale = model, image_shape, axes, scale
        self.redraws = 0
        self._hold = False
        self.sliders = [
            widgets.FloatSlider(value=0.0, min=float(lo), max=float(hi), step=float(hi - lo) / 1000,
                                continuous_update=True, readout_format=".2f")
            for lo, hi in zip(axes.low, axes.high)
        ]
        self.names = axes.names
        self.image = widgets.Image(format="png", layout=widgets.Layout(border="1px solid #999"))
        self.readout = widgets.HTML()
        self.examples = None
        controls = [widgets.HBox([widgets.HTML(f"<code>{name}</code>", layout=widgets.Layout(width="3.5em")), s])
                    for name, s in zip(axes.names, self.sliders)]
        if examples:
            self.examples = widgets.Dropdown(options=[("start from an example...", None)] + examples)
            self.examples.observe(self._on_example, names="value")
            controls.append(self.examples)
        for s in self.sliders:
            s.observe(self._on_slide, names="value")
        self.widget = widgets.HBox([widgets.VBox([self.image, self.readout]), widgets.VBox(controls)])
        self._base, self._base_values = axes.origin, np.zeros(len(self.sliders))

    @property
    def z(self) -> np.ndarray:
        """The code the sliders describe, ``base + sum_i (v_i - v0_i) * directions[i]``, shape ``(latent_dim,)``."""
        values = [s.value for s in self.sliders]
        return self.axes.to_z(values, self._base, self._base_values)

    @property
    def x_hat(self) -> np.ndarray:
        """The decoded image of :attr:`z`, ``(n_outputs,)``."""
        return decode(self.model, self.z[None])[0]

    def set_z(self, z) -> None:
        """Move the sliders to ``z``'s coordinates (clamped to their ranges) and redraw once."""
        z = np.asarray(z, dtype=np.float64)
        if z.shape != self.axes.origin.shape:
            raise AecoreError(f"z must have shape {self.axes.origin.shape}; got {z.shape}")
        self._hold = True
        try:
            for s, v in zip(self.sliders, self.axes.values(z)):
                s.value = float(np.clip(v, s.min, s.max))
        finally:
            self._hold = False
        self._base, self._base_values = z, np.array([s.value for s in self.sliders])
        self.redraw()

    def redraw(self) -> None:
        """Decode the current code and replace the image's bytes (the widget itself stays)."""
        self.image.value = png_bytes(self.x_hat, self.image_shape, self.scale)
        shown = ", ".join(f"{v:.3f}" for v in self.z[:8])
        self.readout.value = f"<code>z = ({shown}{', ...' if len(self.z) > 8 else ''})</code>"
        self.redraws += 1

    def _on_slide(self, change) -> None:
        if not self._hold:
            self.redraw()

    def _on_example(self, change) -> None:
        if change["new"] is not None:
            self.set_z(np.asarray(change["new"]))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def latent_sliders(model, image_shape=None, x=None, labels=None, max_sliders: int = 8, scale: int = 16,
                   num_examples: int = 10) -> LatentSliders:
    """Live sliders over ``model``'s latent space (needs a running kernel).

    Args:
        model: an autoencoder with ``.encoder`` and ``.decoder`` (e.g. :class:`aecore.models.MLPAutoencoder`).
        image_shape: ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)``; ``None`` for a square grey image.
        x: real data; its codes set the slider ranges, the principal directions for latents
            wider than ``max_sliders``, the starting point (their mean) and the example list.
        labels: one label per row of ``x``, to name the examples (the first row of each label).

    >>> from aecore.models import MLPAutoencoder
    >>> ui = latent_sliders(MLPAutoencoder(64, 2, hidden=(8,)))
    >>> len(ui.sliders), ui.z.shape, ui.redraws
    (2, (2,), 1)
    """
    get_decoder(model)
    latent_dim = latent_dim_of(model)
    try:
        n_outputs = decode(model, np.zeros((1, latent_dim))).shape[1]
    except RuntimeError as exc:
        raise AecoreError(f"the decoder cannot take a code of size latent_dim={latent_dim} "
                          f"({str(exc).splitlines()[0][:120]}); check the model's latent_dim") from None
    shape = check_image_shape(image_shape, n_outputs)
    z = None
    examples = []
    if x is not None:
        z = encode(model, x).astype(np.float64)
        if labels is not None and len(labels) != len(z):
            raise AecoreError(f"labels has {len(labels)} entries but x has {len(z)} rows; give one label per row")
        seen = {}
        for i in range(len(z)):
            key = str(labels[i]) if labels is not None else f"row {i}"
            if key not in seen and len(seen) < num_examples:
                seen[key] = (f"{key} (row {i})" if labels is not None else key, tuple(z[i].tolist()))
        examples = sorted(seen.values())
    axes = latent_axes(latent_dim, z, max_sliders)
    ui = LatentSliders(model, shape, axes, examples, scale)
    ui.set_z(z.mean(axis=0) if z is not None and latent_dim <= max_sliders else axes.origin)
    return ui
