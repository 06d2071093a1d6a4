"""Autoencoder models in PyTorch: an ``encoder`` to a small code ``z``, a ``decoder`` back.

Introduced in Chapter 2, "A nonlinear autoencoder on Digits". Models know nothing of
training (see :mod:`aecore.train`), data files or plots.
"""

from __future__ import annotations

import torch
from torch import nn

from aecore.errors import AecoreError

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (``relu``, ``gelu``, ``silu``, ``tanh``, ``elu``).

    >>> make_activation("relu")
    ReLU()
    """
    if name not in ACTIVATIONS:
        raise AecoreError(f"unknown activation '{name}'; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _check_sizes(input_dim, hidden, latent_dim) -> tuple[int, tuple[int, ...], int]:
    for name, value in (("input_dim", input_dim), ("latent_dim", latent_dim)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise AecoreError(f"{name} must be a positive integer; got {value!r}")
    hidden = tuple(hidden)
    if any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in hidden):
        raise AecoreError(f"hidden sizes must be positive integers; got {hidden!r}")
    return input_dim, hidden, latent_dim


class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder: ``x (B, D) -> z (B, latent_dim) -> x_hat (B, D)``.

    The encoder is ``Linear -> activation`` for each hidden size, then a linear map to ``z``
    (no activation: the code may take any real value). The decoder mirrors it and ends in a
    sigmoid, so ``x_hat`` lies in (0, 1) like the pixels it reconstructs.

    Args:
        input_dim: features per sample ``D`` (64 for 8x8 Digits).
        latent_dim: size of the code ``z``.
        hidden: widths of the encoder's hidden layers; the decoder uses them reversed.
        activation: name of the nonlinearity between layers (see :func:`make_activation`).

    >>> model = MLPAutoencoder(input_dim=64, latent_dim=2, hidden=(32, 16))
    >>> x = torch.rand(5, 64)
    >>> model.encoder(x).shape, model(x).shape
    (torch.Size([5, 2]), torch.Size([5, 64]))
    """

    def __init__(self, input_dim: int = 64, latent_dim: int = 2, hidden=(512, 256), activation: str = "relu"):
        super().__init__()
        input_dim, hidden, latent_dim = _check_sizes(input_dim, hidden, latent_dim)
        self.input_dim, self.latent_dim, self.hidden, self.activation = input_dim, latent_dim, hidden, activation
        widths = (input_dim, *hidden)  # e.g. (64, 512, 256)
        encoder = []
        for d_in, d_out in zip(widths[:-1], widths[1:]):
            encoder += [nn.Linear(d_in, d_out), make_activation(activation)]  # (B, d_in) -> (B, d_out)
        encoder.append(nn.Linear(widths[-1], latent_dim))  # (B, hidden[-1]) -> (B, latent_dim)
        decoder = []
        back = (latent_dim, *reversed(hidden))  # e.g. (2, 256, 512)
        for d_in, d_out in zip(back[:-1], back[1:]):
            decoder += [nn.Linear(d_in, d_out), make_activation(activation)]  # (B, d_in) -> (B, d_out)
        decoder += [nn.Linear(back[-1], input_dim), nn.Sigmoid()]  # (B, hidden[0]) -> (B, D), in (0, 1)
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)  # (B, D) -> (B, latent_dim)
        return self.decoder(z)  # (B, latent_dim) -> (B, D)

    @torch.no_grad()
    def init_output_bias(self, x_train) -> MLPAutoencoder:
        """Start the decoder at the mean training image: last bias = logit(pixel mean); returns ``self``.

        A fresh decoder outputs about 0.5 everywhere, while most Digits pixels are near 0, so
        the first epochs go into learning the average image. With this bias the untrained
        model already outputs it (its weights are small), and training starts on the
        differences between images. Means are clipped to [0.01, 0.99] so the logit stays finite.

        >>> model = MLPAutoencoder(4, 1, hidden=(8,)).init_output_bias(torch.tensor([[0.0, 0.5, 1.0, 0.2]]))
        >>> [round(v, 2) for v in torch.sigmoid(model.decoder[-2].bias).tolist()]
        [0.01, 0.5, 0.99, 0.2]
        """
        x_train = torch.as_tensor(x_train, dtype=torch.float32)
        if x_train.ndim != 2 or x_train.shape[1] != self.input_dim:
            raise AecoreError(f"init_output_bias needs rows of {self.input_dim} features; "
                              f"got an array of shape {tuple(x_train.shape)}")
        if not torch.isfinite(x_train).all():
            raise AecoreError("init_output_bias got NaN or infinite values; clean the data first")
        last = self.decoder[-2]  # the Linear before the sigmoid: (B, hidden[0]) -> (B, D)
        p = x_train.mean(dim=0).clamp(0.01, 0.99).to(last.bias.device)  # (D,)
        last.bias.copy_(torch.logit(p))  # sigmoid(bias) = p
        return self

    def config(self) -> dict:
        """The constructor's arguments, so a checkpoint can rebuild the model.

        >>> MLPAutoencoder(64, 2, hidden=(8,)).config()
        {'input_dim': 64, 'latent_dim': 2, 'hidden': [8], 'activation': 'relu'}
        """
        return {"input_dim": self.input_dim, "latent_dim": self.latent_dim,
                "hidden": list(self.hidden), "activation": self.activation}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    >>> count_parameters(MLPAutoencoder(64, 2, hidden=(8,)))
    1138
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
