"""MLPAutoencoder: shapes of every part, outputs in (0, 1), clear errors for bad sizes."""

import pytest
import torch

from aecore.errors import AecoreError
from aecore.models import MLPAutoencoder, count_parameters, make_activation


@pytest.mark.parametrize("input_dim, latent_dim, hidden", [(64, 2, (256, 128)), (10, 1, (7,)), (5, 3, ())])
def test_shapes_of_encoder_decoder_and_round_trip(input_dim, latent_dim, hidden):
    model = MLPAutoencoder(input_dim, latent_dim, hidden)
    x = torch.rand(4, input_dim)
    z = model.encoder(x)
    x_hat = model.decoder(z)
    assert z.shape == (4, latent_dim)
    assert x_hat.shape == x.shape
    assert torch.equal(model(x), x_hat)


def test_output_is_in_unit_interval_and_code_is_unbounded():
    torch.manual_seed(0)
    model = MLPAutoencoder(64, 2, (32,))
    x = 100 * torch.randn(50, 64)
    x_hat = model(x)
    assert (x_hat >= 0).all() and (x_hat <= 1).all()
    assert model.encoder(x).abs().max() > 1  # no squashing on z


def test_layers_mirror_the_hidden_sizes():
    model = MLPAutoencoder(64, 2, (256, 128), activation="gelu")
    enc = [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)]
    dec = [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert enc == [256, 128, 2] and dec == [128, 256, 64]
    assert isinstance(model.encoder[1], torch.nn.GELU)
    assert isinstance(model.decoder[-1], torch.nn.Sigmoid)


def test_config_rebuilds_the_same_architecture():
    model = MLPAutoencoder(20, 3, (16, 8), "tanh")
    twin = MLPAutoencoder(**model.config())
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in twin.state_dict().items()}
    assert count_parameters(model) == count_parameters(twin)


@pytest.mark.parametrize("kwargs, words", [
    ({"latent_dim": 0}, "latent_dim"),
    ({"input_dim": -1}, "input_dim"),
    ({"hidden": (16, 0)}, "hidden"),
    ({"activation": "swish"}, "unknown activation"),
])
def test_bad_sizes_raise_a_clear_error(kwargs, words):
    with pytest.raises(AecoreError, match=words):
        MLPAutoencoder(**{"input_dim": 64, "latent_dim": 2, **kwargs})


def test_make_activation_gives_fresh_modules():
    assert make_activation("relu") is not make_activation("relu")
