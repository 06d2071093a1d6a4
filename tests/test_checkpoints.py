"""The checkpoints shipped with aecore: intact, complete, and the same numbers under 1 and 2 threads.

Each checkpoint's record holds the metrics measured when it was trained. Loading it in a fresh
process with 1 and then 2 BLAS/OpenMP/torch threads must give them back to 1e-6: nothing a
model needs is recomputed at load time, so no tie (a principal direction's sign, say) can be
decided differently on another machine.
"""

import json
from pathlib import Path

import pytest

from aecore.conv_experiment import checkpoint_name, checkpoint_path

FOLDER = checkpoint_path("")
SHIPPED = sorted(p.name for p in Path(FOLDER).glob("*.pt") if not p.name.startswith("vae_"))
SHIPPED_VAE = sorted(p.name for p in Path(FOLDER).glob("vae_*.pt"))  # Chapter 7's conv VAEs
KEYS = ("val_mse", "test_mse", "val_object_mse", "test_object_mse",
        "pca_val_mse", "pca_test_mse", "pca_val_object_mse", "pca_test_object_mse")

SCRIPT = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from aecore.conv_experiment import evaluate_conv, load_conv_checkpoint, load_split, checkpoint_path
out, split = {}, None
for name in sys.argv[2:]:
    model, settings, record = load_conv_checkpoint(checkpoint_path(name))
    split = split or load_split(settings)
    out[name] = evaluate_conv(model, split, settings, train=False)
print(json.dumps(out))
"""


VAE_SCRIPT = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from aecore import conv_vae, vae
from aecore.conv_experiment import checkpoint_path, evaluate_conv, load_split, training_images
out, split = {}, None
for name in sys.argv[2:]:
    model, settings, record = conv_vae.load_conv_vae_checkpoint(checkpoint_path(name))
    split = split or load_split(settings)
    mse = evaluate_conv(conv_vae.MeanDecoder(model), split, settings, train=False)
    scores = vae.vae_scores(model, split.x_test, settings.iwae_samples, settings.seed)
    codes = conv_vae.code_statistics(*conv_vae.posterior(model, training_images(split, settings)),
                                     settings.seed)
    out[name] = {**mse, **scores, **codes}
print(json.dumps(out))
"""
VAE_KEYS = {"val_mse": 1e-6, "test_mse": 1e-6, "pca_val_mse": 1e-6, "pca_test_mse": 1e-6,
            "scale_factor": 1e-6, "elbo": 0.05, "kl": 0.05, "iwae_log_likelihood": 0.05}


def test_the_chapter_checkpoints_are_all_shipped():
    for k in (16, 64):
        for linear_path in (True, False):
            for seed in (0, 1, 2):
                assert checkpoint_name(k, linear_path, seed) in SHIPPED
    from aecore.conv_vae import checkpoint_name as vae_name
    assert SHIPPED_VAE == sorted(vae_name(64, beta) for beta in (1.0, 1e-6))


@pytest.fixture(scope="module")
def by_threads(run_with_threads):
    return {n: run_with_threads(SCRIPT, n, *SHIPPED, timeout=900) for n in (1, 2)}


@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_metrics_come_back_under_1_and_2_threads(name, by_threads):
    record = json.loads(Path(f"{checkpoint_path(name)}.json").read_text())
    for n in (1, 2):
        got = by_threads[n][name]
        for key in KEYS:
            assert abs(got[key] - record["metrics"][key]) < 1e-6, (name, n, key, got[key], record["metrics"][key])


@pytest.fixture(scope="module")
def vae_by_threads(run_with_threads):
    return {n: run_with_threads(VAE_SCRIPT, n, *SHIPPED_VAE, timeout=900) for n in (1, 2)}


@pytest.mark.parametrize("name", SHIPPED_VAE)
def test_vae_records_come_back_under_1_and_2_threads(name, vae_by_threads):
    """Chapter 7's conv VAEs: MSEs and the scale factor to 1e-6, nats per image (about 6,000)
    to 0.05, under 1 and 2 threads."""
    record = json.loads(Path(f"{checkpoint_path(name)}.json").read_text())
    for n in (1, 2):
        got = vae_by_threads[n][name]
        for key, tolerance in VAE_KEYS.items():
            assert abs(got[key] - record["metrics"][key]) < tolerance, (name, n, key, got[key])
