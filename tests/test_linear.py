"""aecore.linear against references: finite differences, scikit-learn's PCA, Eckart-Young."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from aecore.data import load_digits
from aecore.errors import AecoreError
from aecore.linear import (
    PCA,
    LinearAutoencoder,
    check_latent_dim,
    eckart_young_mse,
    mse,
    principal_angles_deg,
    run_linear_experiment,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _random_data(n=40, d=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d))


@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_gradients_match_finite_differences(l2):
    x = _random_data()
    ae = LinearAutoencoder.init(x, latent_dim=3, l2=l2, seed=1)
    _, _, g_e, g_d = ae.loss_and_grads(x)
    eps = 1e-6
    for weights, grad in ((ae.W_e, g_e), (ae.W_d, g_d)):
        numeric = np.zeros_like(weights)
        for idx in np.ndindex(weights.shape):
            old = weights[idx]
            weights[idx] = old + eps
            plus = ae.loss_and_grads(x)[0]
            weights[idx] = old - eps
            minus = ae.loss_and_grads(x)[0]
            weights[idx] = old
            numeric[idx] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_pca_matches_scikit_learn(digits):
    k = 8
    ours = PCA.fit(digits.x_train, k)
    ref = SkPCA(n_components=k, svd_solver="full").fit(digits.x_train)
    signs = np.sign(np.sum(ours.components * ref.components_, axis=1))
    np.testing.assert_allclose(ours.components * signs[:, None], ref.components_, atol=1e-8)
    np.testing.assert_allclose(ours.explained_variance_ratio()[:k], ref.explained_variance_ratio_, rtol=1e-8)
    np.testing.assert_allclose(
        ours.reconstruct(digits.x_val), ref.inverse_transform(ref.transform(digits.x_val)), atol=1e-10
    )


@pytest.mark.parametrize("k", [1, 5, 20, 63])
def test_pca_error_equals_eckart_young_bound(digits, k):
    pca = PCA.fit(digits.x_train, k)
    bound = eckart_young_mse(pca.singular_values, k, *digits.x_train.shape)
    assert mse(digits.x_train, pca.reconstruct(digits.x_train)) == pytest.approx(bound, rel=1e-9)


def test_no_rank_k_matrix_beats_the_bound(digits):
    """A random rank-k reconstruction is never better than Eckart-Young."""
    x = digits.x_train
    pca = PCA.fit(x, 5)
    bound = eckart_young_mse(pca.singular_values, 5, *x.shape)
    rng = np.random.default_rng(0)
    for _ in range(5):
        basis, _ = np.linalg.qr(pca.components.T + 0.1 * rng.normal(size=pca.components.T.shape))
        xc = x - pca.mu
        assert mse(xc, xc @ basis @ basis.T) > bound


@pytest.mark.parametrize("method", ["pca", "autoencoder"])
def test_exact_recovery_of_rank_k_data(method):
    rng = np.random.default_rng(3)
    k = 3
    x = rng.normal(size=(200, k)) @ rng.normal(size=(k, 12)) + rng.normal(size=12)  # rank k + offset
    if method == "pca":
        x_hat = PCA.fit(x, k).reconstruct(x)
    else:
        x_hat = LinearAutoencoder.init(x, k).fit(x, 3000).reconstruct(x)
    assert mse(x, x_hat) < 1e-10 * mse(x, x.mean(axis=0))


@pytest.mark.parametrize("k", [2, 20])  # k = 20 has the smallest eigenvalue gap: it guards DEFAULT_NUM_EPOCHS
def test_autoencoder_reaches_the_bound_and_the_subspace(digits, k):
    result = run_linear_experiment(digits, latent_dim=k)
    assert 1.0 - 1e-9 <= result["train_mse"] / result["eckart_young_mse"] < 1.005
    assert result["subspace_angle_deg"] < 1.0
    assert result["val_mse"] == pytest.approx(result["pca_val_mse"], rel=0.005)


def test_too_few_steps_do_not_reach_the_bound(digits):
    """The previous test can fail: 20 steps are not enough."""
    result = run_linear_experiment(digits, latent_dim=10, num_epochs=20)
    assert result["train_mse"] / result["eckart_young_mse"] > 1.05


def test_l2_penalty_recovers_ordered_components(digits):
    x, k = digits.x_train, 5
    pca = PCA.fit(x, k)
    plain = LinearAutoencoder.init(x, k).fit(x, 6000)
    reg = LinearAutoencoder.init(x, k, l2=1e-4).fit(x, 6000)
    for ae, should_match in ((plain, False), (reg, True)):
        u, _, _ = np.linalg.svd(ae.W_d, full_matrices=False)
        matched = bool(np.abs(np.diag(u.T @ pca.components.T)).min() > 0.999)
        assert matched is should_match
    np.testing.assert_allclose(reg.W_e, reg.W_d.T, atol=1e-8)
    # Kunin et al. 2019: W_d^T W_d has eigenvalues 1 - l2 / lambda_i, lambda_i = s_i**2 / (n d)
    lam = pca.singular_values[:k] ** 2 / x.size
    np.testing.assert_allclose(np.linalg.eigvalsh(reg.W_d.T @ reg.W_d)[::-1], 1 - 1e-4 / lam, rtol=1e-6)


def test_principal_angles():
    e = np.eye(4)
    np.testing.assert_allclose(principal_angles_deg(e[:, :2], e[:, :2]), [0, 0], atol=1e-6)
    np.testing.assert_allclose(principal_angles_deg(e[:, :1], e[:, 1:2]), [90], atol=1e-6)
    tilted = np.array([[1.0], [1.0], [0], [0]])
    np.testing.assert_allclose(principal_angles_deg(e[:, :1], tilted), [45], atol=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 64, 100, 2.5, True])
def test_bad_latent_sizes_are_rejected(bad):
    with pytest.raises(AecoreError, match="latent_dim"):
        check_latent_dim(bad, 64)


@pytest.mark.parametrize("bad", [-1, 2.5, "10"])
def test_bad_num_epochs_are_rejected(digits, bad):
    with pytest.raises(AecoreError, match="num_epochs"):
        run_linear_experiment(digits, latent_dim=2, num_epochs=bad)


def test_data_too_large_to_square_is_rejected():
    x = np.arange(1.0, 13.0).reshape(6, 2) * 1e200
    with pytest.raises(AecoreError, match="too large.*rescale"):
        LinearAutoencoder.init(x, 1).fit(x, 10)


def test_divergence_is_reported_with_advice(digits):
    ae = LinearAutoencoder.init(digits.x_train, 2)
    with pytest.raises(AecoreError, match="diverged.*smaller lr"):
        ae.fit(digits.x_train, 200, lr=1e4)


def test_linear_module_does_not_import_torch():
    code = "import sys, aecore.linear, aecore.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
