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


def test_init_output_bias_makes_the_untrained_model_output_the_mean_image():
    torch.manual_seed(0)
    x = torch.rand(200, 16) ** 3  # mostly dark pixels, like Digits
    plain = MLPAutoencoder(16, 2, (32,))
    started = MLPAutoencoder(16, 2, (32,))
    started.load_state_dict(plain.state_dict())
    started.init_output_bias(x)
    mean = x.mean(dim=0)
    with torch.no_grad():
        err_plain = (plain(x) - mean).abs().mean()
        err_started = (started(x) - mean).abs().mean()
    assert err_started < 0.3 * err_plain  # the fresh decoder draws about the mean image, not flat grey
    changed = [name for name, p in started.state_dict().items() if not torch.equal(p, plain.state_dict()[name])]
    assert changed == ["decoder.2.bias"]  # only the bias of the Linear before the sigmoid


@pytest.mark.parametrize("x, words", [(torch.rand(5, 15), "16 features"), (torch.rand(16), "16 features"),
                                      (torch.full((5, 16), float("nan")), "NaN")])
def test_init_output_bias_rejects_bad_data(x, words):
    with pytest.raises(AecoreError, match=words):
        MLPAutoencoder(16, 2, (8,)).init_output_bias(x)


def test_build_mlp_seeds_and_honours_init_output_bias():
    import numpy as np

    from aecore.experiments import MLPConfig, build_mlp

    x = np.random.default_rng(0).random((30, 16)) ** 3
    a, b = build_mlp(x, 3, MLPConfig(hidden=(8,))), build_mlp(x, 3, MLPConfig(hidden=(8,)))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # seeded
    plain = build_mlp(x, 3, MLPConfig(hidden=(8,), init_output_bias=False))
    expected = torch.logit(torch.tensor(x.mean(axis=0), dtype=torch.float32).clamp(0.01, 0.99))
    torch.testing.assert_close(a.decoder[-2].bias, expected)
    assert not torch.allclose(plain.decoder[-2].bias, expected)
