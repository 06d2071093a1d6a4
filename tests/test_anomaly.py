"""Tests for aecore.anomaly and ``aecore anomaly`` (Chapter 8)."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import aecore.anomaly as an
from aecore.cli import main
from aecore.errors import AecoreError


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 200).astype(float)  # many ties
    labels = rng.integers(0, 2, 200)
    assert an.roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_labels_are_checked():
    with pytest.raises(AecoreError, match="at least one normal"):
        an.roc_auc([1.0, 2.0], [1, 1])
    with pytest.raises(AecoreError, match="0 \\(normal\\) or 1"):
        an.check_labels([0, 2])
    with pytest.raises(AecoreError, match="labels have 2 rows but the data has 3"):
        an.check_labels([0, 1], 3)


def test_threshold_precision_recall():
    t = an.threshold_at(np.arange(100.0), 0.95)
    assert t == pytest.approx(94.05)
    p, r = an.precision_recall(np.array([1.0, 2.0, 3.0, 4.0]), [0, 1, 0, 1], 2.5)
    assert (p, r) == (0.5, 0.5)


def test_protocol_splits_are_disjoint_and_labelled():
    x, classes = an.digits_classes()
    s = an.protocol_split(x, classes, "one-normal", 3, seed=1)
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) < len(x)  # anomalies left out of training
    assert s.y_val.mean() > 0.8 and s.y_test.mean() > 0.8  # nine classes of ten are anomalies
    t = an.protocol_split(x, classes, "one-anomaly", 3, seed=1)
    assert 0.05 < t.y_test.mean() < 0.15
    assert np.array_equal(s.x_test, t.x_test)  # the same rows whatever the protocol
    with pytest.raises(AecoreError, match="protocol must be one of"):
        an.protocol_split(x, classes, "both", 3)


def test_parse_classes():
    assert an.parse_classes("0,8") == (0, 8)
    for bad in ("0,,1", "10", "1,1", "a"):
        with pytest.raises(AecoreError, match="--classes"):
            an.parse_classes(bad)


def test_pca_score_is_zero_on_the_subspace():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 6))
    (s,) = an.pca_scores(x, [x[:5]], 2)
    assert np.allclose(s, 0.0, atol=1e-20)


def test_baselines_separate_an_easy_case():
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(200, 4))
    x = np.vstack([rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 4])
    y = np.repeat([0, 1], 50)
    for method in ("pca", "kde", "ocsvm", "iforest"):
        split = an.AnomalySplit(x_train, x[:0], y[:0], x, y)
        settings = replace(an.DetectorSettings(), pca_k=2, kde_bandwidth=0.5)
        scores = an.detector_scores(method, split, settings)["test"]
        assert an.roc_auc(scores, y) > 0.95, method


def _ae_scores(threads):
    torch.set_num_threads(threads)
    x, classes = an.digits_classes()
    split = an.protocol_split(x, classes, "one-anomaly", 8, seed=0)
    settings = replace(an.DetectorSettings(), num_epochs=3)
    det = an.AEDetector.train(split.x_train, settings, seed=0)
    return det.parts(split.x_test)


def test_autoencoder_detector_same_with_1_and_2_threads():
    before = torch.get_num_threads()
    try:
        a, b = _ae_scores(1), _ae_scores(2)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_run_protocol_shape():
    r = an.run_protocol("one-normal", classes=(0, 1), seeds=2, methods=("pca", "kde"),
                        progress=False)
    assert set(r["methods"]) == {"pca", "kde"}
    assert set(r["methods"]["pca"]["per_class"]) == {"0", "1"}
    assert r["methods"]["kde"]["mean"] > 95


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "aecore", "anomaly", *args],
                          capture_output=True, text=True)


def test_cli_digits_json():
    out = _cli("--data", "digits", "--protocol", "one-normal", "--classes", "1",
               "--seeds", "1", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result["methods"]) == set(an.METHODS)
    for entry in result["methods"].values():
        assert set(entry) == {"per_class", "mean", "std"} and set(entry["per_class"]) == {"1"}


def test_cli_matrix(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(60, 3)), rng.normal(size=(10, 3)) + 5])
    y = np.repeat([0, 1], [60, 10])
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    assert main(["anomaly", "--data", str(tmp_path / "x.npy"), "--labels",
                 str(tmp_path / "y.csv"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_anomalies"] == 10 and result["n_test"] == 28
    assert all(result["methods"][m]["auc"] > 90 for m in an.METHODS)


@pytest.mark.parametrize("args, message", [
    (["--data", "digits", "--classes", "1,12"], "--classes must be distinct digits"),
    (["--data", "X.npy"], "needs --labels"),
    (["--data", "digits", "--labels", "y.csv"], "--labels belongs to --data FILE"),
    (["--data", "X.npy", "--labels", "short.npy"], "labels have 3 rows but the data has 20"),
    (["--data", "X.npy", "--labels", "none.csv"], "labels file not found"),
    (["--data", "X.npy", "--labels", "bad.npy"], "labels must be 0 (normal) or 1"),
])
def test_cli_errors(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    np.save("X.npy", np.random.default_rng(0).normal(size=(20, 3)))
    np.save("short.npy", np.array([0, 1, 0]))
    np.save("bad.npy", np.arange(20) % 3)
    assert main(["anomaly", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
