"""A convolutional autoencoder for colour images: conv + MaxPool down to a vector ``z``, and back.

Introduced in Chapter 5, "A convolutional autoencoder on Pokemon". It trains through the same
:func:`aecore.train.fit` as the MLP of Chapter 2; inputs are ``(B, 3, H, W)`` in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aecore.errors import AecoreError
from aecore.models import make_activation

NORMS = ("batch", "group", "none")
LINEAR_LR_SCALE = 0.01  # the linear path's learning rate relative to the conv layers'
UPSAMPLES = ("nearest", "transpose")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


def conv_output_side(side: int, kernel_size: int = 3, stride: int = 1, padding: int = 1) -> int:
    """Output height (or width) of a convolution: ``(side + 2 * padding - kernel_size) // stride + 1``.

    >>> conv_output_side(64), conv_output_side(64, kernel_size=2, stride=2, padding=0)
    (64, 32)
    """
    return (side + 2 * padding - kernel_size) // stride + 1


class Shift(nn.Module):
    """Adds ``sign * offset`` (a stored image, e.g. the training mean) to its input."""

    def __init__(self, shape, sign: float):
        super().__init__()
        self.sign = sign
        self.register_buffer("offset", torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sign * self.offset


def principal_directions(x, k: int) -> np.ndarray:
    """The top ``k`` principal directions of the rows of ``x`` ``(n, d)``, as ``(k, d)`` float64 rows.

    With fewer rows than columns they come from the ``n x n`` Gram matrix of the centred rows
    (never a ``d x d`` covariance). Each row's sign makes its largest entry positive, so the
    same data always gives the same directions.

    >>> principal_directions(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), 1).round(4)
    array([[0.7071, 0.7071]])
    """
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    a = a - a.mean(axis=0)
    if not 1 <= k <= min(a.shape) - 1:
        raise AecoreError(f"PCA with {k} components needs more than {k} training images; got {len(a)}")
    evals, evecs = np.linalg.eigh(a @ a.T)  # (n,), (n, n), ascending
    top = np.argsort(evals)[::-1][:k]
    v = (evecs[:, top].T @ a) / np.sqrt(evals[top])[:, None]  # (k, d), orthonormal rows
    return v * np.sign(v[np.arange(k), np.abs(v).argmax(axis=1)])[:, None]


class Project(nn.Module):
    """The linear path of the encoder: ``(B, C, S, S) -> (B, k)`` by a learned matrix ``W (k, d)``.

    ``W`` starts at the top ``k`` principal directions (set by ``ConvAutoencoder.init_from_data``)
    and is trained with the rest of the model; it is a parameter, so checkpoints store it.
    """

    def __init__(self, latent_dim: int, n_pixels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(latent_dim, n_pixels))  # (k, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):  # float32 even under mixed precision
            return x.float().flatten(1) @ self.weight.T  # (B, d) @ (d, k) -> (B, k)


class Unproject(nn.Module):
    """The linear path of the decoder: ``(B, k) -> (B, C, S, S)`` by ``W^T``, the encoder's own ``W`` (tied)."""

    def __init__(self, project: Project, shape):
        super().__init__()
        self.project, self.shape = [project], tuple(shape)  # a list: shares W, not registered twice

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        with torch.autocast(z.device.type, enabled=False):  # float32 even under mixed precision
            return (z.float() @ self.project[0].weight).view(-1, *self.shape)  # (B, k) @ (k, d) -> (B, C, S, S)


class Refine(nn.Module):
    """``x + convs(x)``: a few 3x3 convolutions at full resolution that correct a draft image.

    ``(B, C, S, S) -> (B, C, S, S)``. The last convolution starts at zero, so at first it passes
    the draft through unchanged.
    """

    def __init__(self, in_channels: int, channels: int, activation: str = "relu"):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), make_activation(activation),
                                   nn.Conv2d(channels, channels, 3, padding=1), make_activation(activation),
                                   nn.Conv2d(channels, in_channels, 3, padding=1))
        nn.init.zeros_(self.convs[-1].weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs(x)


class SumOf(nn.Module):
    """Runs several branches on one input and adds their outputs."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches)


class ConvAutoencoder(nn.Module):
    """``x (B, C, S, S) -> z (B, latent_dim) -> x_hat (B, C, S, S)`` with a mirrored decoder.

    Encoder: per width ``w``, ``Conv3x3 -> norm -> activation -> MaxPool2`` (halves the side),
    then a linear map to ``z``. Decoder: a linear map back to the smallest feature map, then per
    width (reversed) ``upsample x2 -> Conv3x3 -> norm -> activation``, and a final ``Conv3x3`` to
    ``C`` channels. The model predicts the *difference from the mean training image* (a buffer
    set by :meth:`init_from_data`, zero until then): the encoder starts by subtracting it, the
    decoder ends by adding it back, so ``encoder`` and ``decoder`` alone are the whole maps.

    With ``linear_path=True`` each side also has a linear path, a tied linear autoencoder as in
    Chapter 1, added to the conv path: ``z = W (x - mean) + conv_encoder(x - mean)`` and
    ``x_hat = mean + W^T z + conv_decoder(z)``. :meth:`init_from_data` starts ``W`` at the top
    ``latent_dim`` principal directions of the training images and zeroes the last layer of
    both conv paths, so the untrained model *is* PCA; training then moves every weight, ``W``
    included (at ``linear_lr_scale`` times the learning rate, see :meth:`optimizer_groups`).
    ``W`` is a parameter: a checkpoint stores it and nothing is recomputed at load time.
    With ``refine > 0`` the decoder's draft ``d`` (after the mean is added back) is corrected at
    full resolution: ``x_hat = d + r(d)`` (:class:`Refine`, starting as the identity).
    There is no output sigmoid; pixels in [0, 1] are the target, not a constraint.

    Args:
        latent_dim: size of the code ``z``.
        widths: channels of the encoder blocks, e.g. ``(32, 64, 128)``; each halves the side.
        size: input side ``S`` (divisible by ``2 ** len(widths)``).
        in_channels: 3 for RGB.
        norm: ``batch``, ``group`` or ``none``; upsample: ``nearest`` (+ conv) or ``transpose``.
        convs_per_block: 3x3 convolutions per block (2 gives a deeper net at the same sizes).
        linear_path: add the trained linear path described above.
        refine: channels of the full-resolution correction (:class:`Refine`) at the decoder's end; 0: none.
        linear_lr_scale: the linear path's learning rate relative to the rest (0 freezes it at PCA).

    >>> model = ConvAutoencoder(latent_dim=8, widths=(4, 8), size=16)
    >>> x = torch.rand(2, 3, 16, 16)
    >>> model.encoder(x).shape, model(x).shape
    (torch.Size([2, 8]), torch.Size([2, 3, 16, 16]))
    """

    def __init__(self, latent_dim: int = 64, widths=(32, 64, 128), size: int = 64, in_channels: int = 3,
                 norm: str = "batch", activation: str = "relu", upsample: str = "nearest",
                 convs_per_block: int = 1, linear_path: bool = False, refine: int = 0,
                 linear_lr_scale: float = LINEAR_LR_SCALE):
        super().__init__()
        widths = tuple(widths)
        for name, value in (("latent_dim", latent_dim), ("size", size), ("in_channels", in_channels),
                            ("convs_per_block", convs_per_block), *(("width", w) for w in widths)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise AecoreError(f"{name} must be a positive integer; got {value!r}")
        if not widths or size % 2 ** len(widths):
            raise AecoreError(f"size {size} must be divisible by 2**len(widths) = {2 ** len(widths)}; "
                              "use fewer blocks or a size such as 32, 64 or 128")
        if not isinstance(refine, int) or isinstance(refine, bool) or refine < 0:
            raise AecoreError(f"refine must be a non-negative integer (channels; 0 for none); got {refine!r}")
        scale_ok = isinstance(linear_lr_scale, (int, float)) and not isinstance(linear_lr_scale, bool)
        if not scale_ok or not 0 <= linear_lr_scale:
            raise AecoreError(f"linear_lr_scale must be a number >= 0 (0 freezes the linear path); "
                              f"got {linear_lr_scale!r}")
        if norm not in NORMS or upsample not in UPSAMPLES:
            raise AecoreError(f"norm must be one of {NORMS} and upsample one of {UPSAMPLES}; got {norm!r}, {upsample!r}")
        self.settings = {"latent_dim": latent_dim, "widths": list(widths), "size": size, "in_channels": in_channels,
                         "norm": norm, "activation": activation, "upsample": upsample,
                         "convs_per_block": convs_per_block, "linear_path": bool(linear_path), "refine": refine,
                         "linear_lr_scale": linear_lr_scale}
        self.linear_lr_scale = linear_lr_scale
        self.latent_dim = latent_dim
        side = size // 2 ** len(widths)  # e.g. 64 // 8 = 8
        flat = widths[-1] * side * side  # e.g. 128 * 8 * 8 = 8192

        def convs(c_in, c_out):  # convs_per_block x (Conv3x3 -> norm -> act), side unchanged
            layers = []
            for i in range(convs_per_block):
                layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1),
                           _norm(norm, c_out), make_activation(activation)]
            return layers

        encoder, c_in = [], in_channels
        for w in widths:  # (B, c_in, s, s) -> (B, w, s/2, s/2)
            encoder += convs(c_in, w) + [nn.MaxPool2d(2)]
            c_in = w
        encoder += [nn.Flatten(), nn.Linear(flat, latent_dim)]  # (B, w_last, side, side) -> (B, latent_dim)
        shape = (in_channels, size, size)
        self.linear = Project(latent_dim, in_channels * size * size) if linear_path else None
        encoder = [SumOf(nn.Sequential(*encoder), self.linear)] if linear_path else encoder
        self.encoder = nn.Sequential(Shift((1, *shape), -1.0), *encoder)  # starts with x - mean

        decoder = [nn.Linear(latent_dim, flat), make_activation(activation),
                   nn.Unflatten(1, (widths[-1], side, side))]  # (B, latent_dim) -> (B, w_last, side, side)
        back = (*reversed(widths), widths[0])  # e.g. (128, 64, 32, 32)
        for c_in, c_out in zip(back[:-1], back[1:]):  # (B, c_in, s, s) -> (B, c_out, 2s, 2s)
            if upsample == "nearest":
                decoder += [nn.Upsample(scale_factor=2, mode="nearest")] + convs(c_in, c_out)
            else:
                decoder += [nn.ConvTranspose2d(c_in, c_out, 2, stride=2), _norm(norm, c_out),
                            make_activation(activation)] + convs(c_out, c_out)[: 3 * (convs_per_block - 1)]
        decoder.append(nn.Conv2d(widths[0], in_channels, 3, padding=1))  # (B, w0, S, S) -> (B, C, S, S)
        if linear_path:
            decoder = [SumOf(nn.Sequential(*decoder), Unproject(self.linear, shape))]
        decoder.append(Shift((1, *shape), 1.0))  # + mean
        if refine:
            decoder.append(Refine(in_channels, refine, activation))  # draft image -> corrected image
        self.decoder = nn.Sequential(*decoder)

    @property
    def mean(self) -> torch.Tensor:
        """The mean training image ``(1, C, S, S)`` the model works around."""
        return self.encoder[0].offset

    @torch.no_grad()
    def init_from_data(self, x_train) -> ConvAutoencoder:
        """Store the mean training image ``(1, C, S, S)``; with ``linear_path``, also start at PCA.

        That is: ``W`` = the top ``latent_dim`` principal directions of ``x_train``, and the last
        layer of each conv path zero, so ``model(x)`` is PCA's reconstruction until training.
        """
        x_train = torch.as_tensor(x_train, dtype=torch.float32)
        if x_train.shape[1:] != self.mean.shape[1:]:
            raise AecoreError(f"images of shape {tuple(x_train.shape[1:])} do not fit a model built for "
                              f"{tuple(self.mean.shape[1:])}")
        mean = x_train.mean(dim=0, keepdim=True)
        self.encoder[0].offset.copy_(mean)
        self._output_shift.offset.copy_(mean)
        if self.linear is not None:
            v = principal_directions(x_train.flatten(1).double().numpy(), self.latent_dim)
            self.linear.weight.copy_(torch.from_numpy(v))
            conv_encoder, conv_decoder = self.encoder[1].branches[0], self.decoder[0].branches[0]
            for layer in (conv_encoder[-1], conv_decoder[-1]):  # Linear(flat, k) and the last Conv2d
                layer.weight.zero_()
                layer.bias.zero_()
        return self

    @property
    def _output_shift(self) -> Shift:
        return next(m for m in reversed(self.decoder) if isinstance(m, Shift))

    def optimizer_groups(self) -> list:
        """Parameter groups for :func:`aecore.train.fit`: the linear path ``W`` learns more slowly.

        Adam moves every weight by about the learning rate per step; PCA's directions have
        entries of about ``1 / sqrt(d)`` (0.009 at 64x64x3), so at the conv layers' rate they
        would be lost in a few steps.
        """
        if self.linear is None:
            return [{"params": list(self.parameters())}]
        others = [p for p in self.parameters() if p is not self.linear.weight]
        return [{"params": others}, {"params": [self.linear.weight], "lr_scale": self.linear_lr_scale}]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, C, S, S) -> (B, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, latent_dim) -> (B, C, S, S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        return self.decode(z)

    def config(self) -> dict:
        """The constructor's arguments, so a checkpoint can rebuild the model."""
        return dict(self.settings)
