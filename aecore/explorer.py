"""A latent explorer that needs no kernel: self-contained HTML that decodes ``z`` in the browser.

Introduced in Chapter 3, "What the latent space represents". :func:`latent_explorer` exports
the decoder's ``nn.Linear`` weights (float32 or float16, base64 in a JSON blob) and the slider
axes of :mod:`aecore.latent`; ``aecore/js/latent_explorer.js`` (inlined into the HTML) runs the
same forward pass and redraws a canvas as sliders move or as the 2-D latent map is clicked.
The same output works in Jupyter, in Colab and in the static book, offline.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
from importlib import resources

import numpy as np
import torch
from torch import nn

from aecore.errors import AecoreError
from aecore.latent import check_image_shape, encode, get_decoder, latent_axes, latent_dim_of

MAX_LATENT_DIM = 256  # the browser recomputes z from the sliders on every move
MAX_PARAMETERS = 2_000_000  # about 8 MB of float32: more would make a heavy page
ELEMENTWISE = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.Tanh: "tanh", nn.GELU: "gelu",
               nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Softplus: "softplus", nn.Identity: "identity",
               nn.Dropout: "identity"}
_COUNTER = itertools.count(1)


def _b64(a, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4" if dtype == "float32" else "<f2").tobytes()).decode()


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4" if dtype == "float32" else "<f2").astype(np.float32)


def _flat_layers(module: nn.Module):
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _flat_layers(child)
    else:
        yield module


def export_decoder(decoder: nn.Module, dtype: str = "float32") -> list[dict]:
    """The decoder's layers as JSON-ready dicts: ``linear`` (base64 weights) or an activation.

    Only ``nn.Linear`` and elementwise activations (``ReLU``, ``LeakyReLU``, ``ELU``, ``Tanh``,
    ``GELU``, ``SiLU``, ``Sigmoid``, ``Softplus``), possibly nested in ``nn.Sequential``, can run
    in the browser; anything else raises :class:`~aecore.errors.AecoreError`.

    >>> [layer["kind"] for layer in export_decoder(nn.Sequential(nn.Linear(2, 3), nn.Tanh()))]
    ['linear', 'tanh']
    """
    if dtype not in ("float32", "float16"):
        raise AecoreError(f"dtype must be 'float32' or 'float16'; got {dtype!r}")
    layers = []
    for m in _flat_layers(decoder):
        if isinstance(m, nn.Linear):
            w = m.weight.detach().cpu().numpy()  # (out, in), row-major as the JavaScript reads it
            b = np.zeros(m.out_features) if m.bias is None else m.bias.detach().cpu().numpy()
            layers.append({"kind": "linear", "in": m.in_features, "out": m.out_features,
                           "weight": _b64(w, dtype), "bias": _b64(b, dtype)})
        elif type(m) in ELEMENTWISE:
            layer = {"kind": ELEMENTWISE[type(m)]}
            if isinstance(m, nn.LeakyReLU):
                layer["slope"] = float(m.negative_slope)
            elif isinstance(m, nn.ELU):
                layer["alpha"] = float(m.alpha)
            elif isinstance(m, nn.GELU):
                layer["approximate"] = m.approximate
            elif isinstance(m, nn.Softplus):
                layer["beta"], layer["threshold"] = float(m.beta), float(m.threshold)
            layers.append(layer)
        else:
            raise AecoreError(f"the latent explorer runs nn.Linear layers and elementwise activations in the "
                              f"browser; this decoder has a {type(m).__name__}. Use aecore.sliders.latent_sliders "
                              "(it needs a running kernel) for such decoders")
    if not any(layer["kind"] == "linear" for layer in layers):
        raise AecoreError("the decoder has no nn.Linear layer: nothing to export")
    return layers


def decoder_from_spec(layers: list[dict], dtype: str = "float32") -> nn.Sequential:
    """Rebuild a PyTorch decoder from :func:`export_decoder`'s layers (to check the browser's output).

    >>> dec = nn.Sequential(nn.Linear(2, 3), nn.GELU())
    >>> z = torch.randn(4, 2)
    >>> torch.equal(decoder_from_spec(export_decoder(dec))(z), dec(z))
    True
    """
    acts = {"relu": lambda s: nn.ReLU(), "leaky_relu": lambda s: nn.LeakyReLU(s["slope"]),
            "elu": lambda s: nn.ELU(s["alpha"]), "tanh": lambda s: nn.Tanh(),
            "gelu": lambda s: nn.GELU(approximate=s["approximate"]), "silu": lambda s: nn.SiLU(),
            "sigmoid": lambda s: nn.Sigmoid(), "softplus": lambda s: nn.Softplus(s["beta"], s["threshold"]),
            "identity": lambda s: nn.Identity()}
    modules = []
    for spec in layers:
        if spec["kind"] == "linear":
            lin = nn.Linear(spec["in"], spec["out"])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(_unb64(spec["weight"], dtype).reshape(spec["out"], spec["in"])))
                lin.bias.copy_(torch.from_numpy(_unb64(spec["bias"], dtype)))
            modules.append(lin)
        else:
            modules.append(acts[spec["kind"]](spec))
    return nn.Sequential(*modules).eval()


def to_pixels(x_hat, image_shape) -> np.ndarray:
    """Decoded values in [0, 1] as the canvas draws them: ``(H, W, 4)`` RGBA uint8.

    One channel is drawn dark on light (``255 * (1 - v)``, like matplotlib's ``gray_r``);
    three channels as RGB.

    >>> to_pixels(np.array([0.0, 1.0]), (1, 2))[..., 0].tolist()
    [[255, 0]]
    """
    v = np.clip(np.asarray(x_hat, dtype=np.float64).reshape(image_shape), 0.0, 1.0)
    if len(image_shape) == 3 and image_shape[0] == 3:
        rgb = np.round(255 * v).transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    else:
        grey = np.round(255 * (1 - v.reshape(image_shape[-2:])))
        rgb = np.stack([grey] * 3, axis=-1)
    alpha = np.full(rgb.shape[:2] + (1,), 255.0)
    return np.concatenate([rgb, alpha], axis=-1).astype(np.uint8)


class LatentExplorer:
    """The explorer's HTML (``.html``), its JSON spec (``.spec``) and DOM id; displays itself in Jupyter."""

    def __init__(self, spec: dict, dom_id: str):
        self.spec, self.dom_id = spec, dom_id
        script = resources.files("aecore").joinpath("js/latent_explorer.js").read_text()
        blob = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
        self.html = (
            f'<div class="aecore-explorer" id="{dom_id}">'
            '<p class="aecore-explorer-fallback">The latent explorer needs JavaScript to run.</p>'
            f'<script type="application/json" class="aecore-explorer-spec">{blob}</script></div>\n'
            f"<script>\n{script}\n</script>\n"
            f'<script>window.aecoreLatentExplorer("{dom_id}");</script>'
        )

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"LatentExplorer(latent_dim={self.spec['latent_dim']}, image_shape={tuple(self.spec['image_shape'])}, " \
               f"{len(self.html) / 1024:.0f} KiB of HTML)"

    def save(self, path) -> None:
        """Write a standalone page (open it in any browser, no server or network needed)."""
        from pathlib import Path

        title = html.escape("aecore latent explorer")
        Path(path).write_text(f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
                              f"<body>\n{self.html}\n</body></html>\n")


def latent_explorer(model, image_shape=None, x=None, z=None, labels=None, max_sliders: int = 8,
                    dtype: str = "float32", scale: int = 20, max_points: int = 1000,
                    num_examples: int = 10) -> LatentExplorer:
    """Sliders (and, for a 2-D latent, a clickable map) that decode ``z`` in the browser.

    Args:
        model: an autoencoder with ``.decoder`` (and ``.encoder`` if ``x`` is given).
        image_shape: ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)``; ``None`` for a square grey image.
        x, z: real data (encoded here) or its codes; they set slider ranges, principal directions
            for latents wider than ``max_sliders``, the map's points and the example list.
        labels: one label per row of ``x``/``z``, to colour the map and name the examples.
        dtype: ``float32`` (exact) or ``float16`` (half the size) for the embedded weights.
        scale: screen pixels per image pixel.

    Returns a :class:`LatentExplorer`; the last expression of a cell displays it.
    """
    decoder = get_decoder(model)
    latent_dim = latent_dim_of(model)
    if latent_dim > MAX_LATENT_DIM:
        raise AecoreError(f"latent_dim {latent_dim} is too large for the browser explorer (at most {MAX_LATENT_DIM}); "
                          "use aecore.sliders.latent_sliders in a running kernel instead")
    layers = export_decoder(decoder, dtype)
    linears = [layer for layer in layers if layer["kind"] == "linear"]
    n_params = sum(layer["in"] * layer["out"] + layer["out"] for layer in linears)
    if n_params > MAX_PARAMETERS:
        raise AecoreError(f"the decoder has {n_params:,} parameters, more than {MAX_PARAMETERS:,} for a web page; "
                          "use narrower hidden layers, dtype='float16', or aecore.sliders.latent_sliders")
    if linears[0]["in"] != latent_dim:
        raise AecoreError(f"the decoder's first layer takes {linears[0]['in']} inputs but latent_dim is {latent_dim}")
    shape = check_image_shape(image_shape, linears[-1]["out"])
    if x is not None and z is not None:
        raise AecoreError("pass either x (data, encoded here) or z (codes), not both")
    if x is not None:
        z = encode(model, x)
    if z is not None:
        z = np.asarray(z, dtype=np.float64)
        if labels is not None and len(labels) != len(z):
            raise AecoreError(f"labels has {len(labels)} entries but there are {len(z)} codes; give one label per row")
    axes = latent_axes(latent_dim, z, max_sliders)
    start = axes.origin if z is None else (z.mean(axis=0) if latent_dim <= max_sliders else axes.origin)
    spec = {"latent_dim": latent_dim, "image_shape": list(shape), "dtype": dtype, "scale": int(scale),
            "layers": layers, "start": _floats(start),
            "axes": {"origin": _floats(axes.origin), "directions": [_floats(d) for d in axes.directions],
                     "low": _floats(axes.low), "high": _floats(axes.high), "names": list(axes.names)},
            "map": None, "examples": _examples(z, labels, num_examples)}
    if latent_dim == 2:
        spec["map"] = _map(z, labels, axes, max_points)
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    return LatentExplorer(spec, f"aecore-explorer-{digest}-{next(_COUNTER)}")


def _floats(a) -> list[float]:
    return [round(float(v), 6) for v in np.ravel(a)]


def _examples(z, labels, num_examples: int) -> list[dict]:
    """The first code of each label (or the first codes, without labels), to start the sliders from."""
    if z is None:
        return []
    if labels is None:
        picks = range(min(num_examples, len(z)))
        return [{"name": f"example {i}", "z": _floats(z[i])} for i in picks]
    seen, out = set(), []
    for i, label in enumerate(labels):
        key = str(label.item() if hasattr(label, "item") else label)
        if key not in seen and len(out) < num_examples:
            seen.add(key)
            out.append({"name": f"{key} (row {i})", "z": _floats(z[i])})
    return sorted(out, key=lambda e: e["name"])


def _map(z, labels, axes, max_points: int) -> dict:
    """The 2-D map: its bounds and up to ``max_points`` codes, quantised to one byte per coordinate."""
    out = {"low": _floats(axes.low), "high": _floats(axes.high), "points": "", "labels": "", "names": []}
    if z is None:
        return out
    keep = np.linspace(0, len(z) - 1, min(max_points, len(z))).astype(int)  # deterministic thinning
    q = np.round(255 * (z[keep] - axes.low) / (axes.high - axes.low)).clip(0, 255).astype(np.uint8)
    out["points"] = base64.b64encode(q.tobytes()).decode()  # (n, 2) interleaved z1, z2
    if labels is not None:
        names, index = np.unique(np.asarray([str(v) for v in np.asarray(labels)])[keep], return_inverse=True)
        out["names"] = names.tolist()
        out["labels"] = base64.b64encode(index.astype(np.uint8).tobytes()).decode()
    return out
