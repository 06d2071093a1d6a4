"""Anomaly detection by reconstruction error, measured against the classical detectors.

Introduced in Chapter 8, "Anomaly detection". A detector learns from normal rows only and
gives every row a score, higher for more unusual; :func:`roc_auc` measures how well the
scores rank anomalies above normal rows. Two protocols on Digits: ``one-normal`` (one class
is normal, the other nine are anomalies) and ``one-anomaly`` (nine classes are normal, the
held-out one is the anomaly). Every detector sees the same splits and seeds. The same
functions serve the chapter and ``aecore anomaly``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KernelDensity, NearestNeighbors
from sklearn.svm import OneClassSVM
from tqdm.auto import tqdm

from aecore.errors import AecoreError
from aecore.experiments import MLPConfig, build_mlp
from aecore.train import fit

PROTOCOLS = ("one-normal", "one-anomaly")
METHODS = ("autoencoder", "pca", "kde", "ocsvm", "iforest")
AE_SCORES = ("recon", "code", "combined")


def check_labels(labels, n_rows: int | None = None) -> np.ndarray:
    """0/1 anomaly labels (1 = anomaly) as an int array; both kinds must be present."""
    y = np.asarray(labels).reshape(-1)
    if n_rows is not None and len(y) != n_rows:
        raise AecoreError(f"labels have {len(y)} rows but the data has {n_rows}; "
                          "give one 0/1 label per row")
    if not np.all(np.isin(y, (0, 1))):
        raise AecoreError("labels must be 0 (normal) or 1 (anomaly); got "
                          f"{sorted(set(np.unique(y).tolist()) - {0, 1})[:5]}")
    if y.min() == y.max():
        raise AecoreError("labels need at least one normal row (0) and one anomaly (1)")
    return y.astype(int)


def read_labels(path) -> np.ndarray:
    """One 0/1 label per row from a ``.npy`` or ``.csv`` file (a column or a flat vector)."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise AecoreError(f"labels file not found: {path}; give a .npy or .csv of 0/1 labels")
    try:
        if path.suffix.lower() == ".npy":
            y = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".csv":
            y = np.loadtxt(path, delimiter=",", ndmin=1)
        else:
            raise AecoreError(f"unsupported labels file type '{path.suffix}'; use .npy or .csv")
    except ValueError as exc:
        raise AecoreError(f"cannot read {path} as 0/1 labels ({exc})") from None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise AecoreError(f"{path}: one label per row in one column; got shape {y.shape}")
    return y


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve from ranks (ties share their mean rank).

    The probability that a random anomaly scores above a random normal row (ties count
    half): the Mann-Whitney statistic divided by the number of pairs.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    y = check_labels(labels, len(np.ravel(scores)))
    ranks = rankdata(np.ravel(scores))  # 1 = lowest score
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def threshold_at(normal_scores, quantile: float = 0.95) -> float:
    """The score that ``quantile`` of the normal (validation) rows stay at or below."""
    return float(np.quantile(np.asarray(normal_scores, np.float64), quantile))


def precision_recall(scores, labels, threshold: float) -> tuple[float, float]:
    """Precision and recall of flagging every row whose score is above ``threshold``."""
    y, flagged = check_labels(labels, len(scores)), np.asarray(scores) > threshold
    hits = int((flagged & (y == 1)).sum())
    return hits / max(int(flagged.sum()), 1), hits / int(y.sum())


@dataclass(frozen=True)
class AnomalySplit:
    """Normal training rows, and validation and test rows with labels (1 = anomaly)."""

    x_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_classes():
    """Digits scaled to [0, 1] ``(1797, 64)`` and their classes 0..9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data / 16.0, bunch.target


def parse_classes(text: str | None) -> tuple:
    """``"0,3,8"`` -> ``(0, 3, 8)``; ``None`` -> all ten digit classes."""
    if text is None:
        return tuple(range(10))
    try:
        classes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise AecoreError(f"--classes must be digits 0 to 9 separated by commas; got '{text}'")
    if not all(0 <= c <= 9 for c in classes) or len(set(classes)) != len(classes):
        raise AecoreError(f"--classes must be distinct digits 0 to 9, e.g. 0,3,8; got '{text}'")
    return classes


def split_indices(classes, seed: int = 0) -> tuple:
    """Row indices ``(train, val, test)``: 49/21/30%, stratified by class, seeded."""
    idx = np.arange(len(classes))
    rest, test = train_test_split(idx, test_size=0.3, random_state=seed, stratify=classes)
    train, val = train_test_split(rest, test_size=0.3, random_state=seed,
                                  stratify=classes[rest])
    return train, val, test


def protocol_split(x, classes, protocol: str, cls: int, seed: int = 0) -> AnomalySplit:
    """Split rows 49/21/30 (train/val/test, stratified by class, seeded); keep normal training rows.

    ``one-normal``: class ``cls`` is normal, every other class an anomaly. ``one-anomaly``:
    class ``cls`` is the anomaly, every other class normal. The split depends only on
    ``seed``, so every class and every detector sees the same rows.
    """
    if protocol not in PROTOCOLS:
        raise AecoreError(f"protocol must be one of {', '.join(PROTOCOLS)}; got '{protocol}'")
    train, val, test = split_indices(classes, seed)
    anomalous = (classes != cls) if protocol == "one-normal" else (classes == cls)
    train = train[~anomalous[train]]
    return AnomalySplit(x[train], x[val], anomalous[val].astype(int), x[test],
                        anomalous[test].astype(int))


def matrix_split(x, labels, seed: int = 0) -> AnomalySplit:
    """A reader's matrix: train on 70% of the normal rows, score the rest plus every anomaly.

    There is no validation set (``x_val`` is empty): the detectors keep their defaults.
    """
    y = check_labels(labels, len(x))
    normal = np.flatnonzero(y == 0)
    if len(normal) < 4:
        raise AecoreError(f"need at least 4 normal rows (label 0); got {len(normal)}")
    train, held = train_test_split(normal, test_size=0.3, random_state=seed)
    test = np.sort(np.concatenate([held, np.flatnonzero(y == 1)]))
    return AnomalySplit(x[train], x[:0], y[:0], x[test], y[test])


@dataclass(frozen=True)
class DetectorSettings:
    """One setting per detector; the defaults were chosen in Chapter 8 on the validation rows
    of the one-anomaly protocol (seed 0, all ten classes)."""

    pca_k: int = 8
    kde_bandwidth: float = 0.3
    ocsvm_nu: float = 0.5  # scikit-learn's default
    ocsvm_gamma: float = 64.0  # times scikit-learn's 'scale', 1 / (d * variance)
    iforest_trees: int = 100
    latent_dim: int = 64
    ae_score: str = "combined"  # 'recon', 'code' or 'combined'
    noise: float = 0.0  # > 0: a denoising autoencoder (Gaussian noise of this level)
    neighbours: int = 5  # the code distance is the mean distance to this many training codes
    num_epochs: int = 30


def pca_scores(x_train, xs, k: int) -> list:
    """Squared reconstruction error of each row of each array in ``xs`` with ``k`` directions."""
    mean = x_train.mean(axis=0)
    _, _, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    v = vt[:k]  # (k, d)
    return [(((a - mean) - (a - mean) @ v.T @ v) ** 2).sum(axis=1) for a in xs]


def kde_scores(x_train, xs, bandwidth: float) -> list:
    """Minus the log density of a Gaussian kernel density estimate fitted on ``x_train``."""
    kde = KernelDensity(bandwidth=bandwidth).fit(x_train)
    return [-kde.score_samples(a) for a in xs]


def ocsvm_scores(x_train, xs, nu: float, gamma: float = 1.0) -> list:
    """Minus the decision function of a one-class SVM (RBF kernel, ``gamma`` times 'scale')."""
    scale = 1.0 / (x_train.shape[1] * x_train.var())
    svm = OneClassSVM(nu=nu, gamma=gamma * scale).fit(x_train)
    return [-svm.decision_function(a) for a in xs]


def iforest_scores(x_train, xs, trees: int, seed: int) -> list:
    """Minus scikit-learn's Isolation Forest score (short isolation paths score high)."""
    forest = IsolationForest(n_estimators=trees, random_state=seed).fit(x_train)
    return [-forest.score_samples(a) for a in xs]


@dataclass
class AEDetector:
    """Chapter 2's MLP autoencoder trained on normal rows, and its three scores.

    ``recon``: squared reconstruction error. ``code``: mean distance of the code ``z = f(x)``
    to its nearest training codes. ``combined``: the sum of both, each divided by its median
    on the training rows (a scale-free sum).
    """

    model: torch.nn.Module
    nn_index: NearestNeighbors
    scale: np.ndarray  # training medians of (recon, code)

    @classmethod
    def train(cls, x_train, settings: DetectorSettings, seed: int = 0) -> AEDetector:
        from aecore.denoising import Gaussian

        config = MLPConfig().with_fit(num_epochs=settings.num_epochs, seed=seed,
                                      progress=False, device="cpu")  # 1 thread, as Chapter 2
        model = build_mlp(x_train, settings.latent_dim, config)
        corrupt = Gaussian(settings.noise) if settings.noise > 0 else None
        fit(model, x_train, None, config.fit, corrupt=corrupt)
        model.eval()
        z_train = _codes(model, x_train)
        index = NearestNeighbors(n_neighbors=settings.neighbours + 1).fit(z_train)
        det = cls(model, index, np.ones(2))
        parts = det.parts(x_train, skip_self=True)
        det.scale = np.median(parts, axis=0)
        return det

    def parts(self, x, skip_self: bool = False) -> np.ndarray:
        """``(N, 2)``: reconstruction error and code distance of each row."""
        with torch.no_grad():
            t = torch.as_tensor(np.asarray(x, np.float32))
            x_hat = self.model(t).double().numpy()
        recon = ((x_hat - x) ** 2).sum(axis=1)
        m = self.nn_index.n_neighbors
        dist, _ = self.nn_index.kneighbors(_codes(self.model, x), n_neighbors=m)
        code = dist[:, 1:].mean(axis=1) if skip_self else dist[:, :m - 1].mean(axis=1)
        return np.stack([recon, code], axis=1)

    def score(self, x, kind: str = "combined") -> np.ndarray:
        p = self.parts(x) / self.scale
        return {"recon": p[:, 0], "code": p[:, 1], "combined": p.sum(axis=1)}[kind]


def _codes(model, x) -> np.ndarray:
    with torch.no_grad():
        return model.encoder(torch.as_tensor(np.asarray(x, np.float32))).double().numpy()


def detector_scores(method: str, split: AnomalySplit, settings: DetectorSettings,
                    seed: int = 0, with_val: bool = False) -> dict:
    """``{"test": scores}`` (and ``"val"``) of one detector trained on ``split.x_train``."""
    xs = [split.x_test] + ([split.x_val] if with_val else [])
    x = split.x_train
    if method == "pca":
        out = pca_scores(x, xs, settings.pca_k)
    elif method == "kde":
        out = kde_scores(x, xs, settings.kde_bandwidth)
    elif method == "ocsvm":
        out = ocsvm_scores(x, xs, settings.ocsvm_nu, settings.ocsvm_gamma)
    elif method == "iforest":
        out = iforest_scores(x, xs, settings.iforest_trees, seed)
    elif method == "autoencoder":
        det = AEDetector.train(x, settings, seed)
        out = [det.score(a, settings.ae_score) for a in xs]
    else:
        raise AecoreError(f"unknown method '{method}'; one of {', '.join(METHODS)}")
    return dict(zip(("test", "val"), out))


def run_protocol(protocol: str, classes=tuple(range(10)), seeds: int = 3,
                 settings: DetectorSettings = DetectorSettings(), methods=METHODS,
                 on: str = "test", progress: bool = True) -> dict:
    """ROC AUC (in %) of every method for every class and seed on Digits.

    ``on="val"`` scores the validation rows instead (for choosing settings); ``"test"`` is
    for the claims. Returns ``{"methods": {name: {"per_class", "mean", "std", "auc"}}}`` where
    ``auc[seed][i]`` is class ``classes[i]``; ``mean`` and ``std`` are over seeds of the
    class-averaged AUC, ``per_class`` the mean over seeds.
    """
    if on not in ("val", "test"):
        raise AecoreError(f"on must be 'val' or 'test'; got '{on}'")
    x, labels = digits_classes()
    auc = {m: np.zeros((seeds, len(classes))) for m in methods}
    bar = tqdm(total=seeds * len(classes), desc=protocol, disable=not progress)
    for seed in range(seeds):
        for i, cls in enumerate(classes):
            split = protocol_split(x, labels, protocol, cls, seed)
            if on == "val":
                split = replace(split, x_test=split.x_val, y_test=split.y_val)
            for m in methods:
                scores = detector_scores(m, split, settings, seed)["test"]
                auc[m][seed, i] = 100 * roc_auc(scores, split.y_test)
            bar.update()
    bar.close()
    return {"protocol": protocol, "classes": list(classes), "seeds": seeds, "on": on,
            "methods": {m: summarize(a, classes) for m, a in auc.items()}}


def summarize(auc: np.ndarray, classes) -> dict:
    """Per-class means over seeds, and the mean and std over seeds of the class average."""
    per_seed = auc.mean(axis=1)
    return {"per_class": {str(c): float(v) for c, v in zip(classes, auc.mean(axis=0))},
            "mean": float(per_seed.mean()), "std": float(per_seed.std(ddof=1))
            if len(per_seed) > 1 else 0.0, "auc": auc.tolist()}


def run_matrix(x, labels, settings: DetectorSettings = DetectorSettings(), seed: int = 0,
               methods=METHODS) -> dict:
    """Every detector on a reader's matrix (see :func:`matrix_split`): ``auc`` in % each."""
    split = matrix_split(x, labels, seed)
    settings = replace(settings, pca_k=min(settings.pca_k, x.shape[1] - 1, len(split.x_train) - 1),
                       neighbours=min(settings.neighbours, len(split.x_train) - 1))
    out = {}
    for m in methods:
        scores = detector_scores(m, split, settings, seed)["test"]
        out[m] = {"auc": 100 * roc_auc(scores, split.y_test)}
    return {"n_train": len(split.x_train), "n_test": len(split.y_test),
            "n_anomalies": int(split.y_test.sum()), "methods": out}


def ae_variants(x_train, x_eval, y_eval, latent_dims, noise: float = 0.0,
                settings: DetectorSettings = DetectorSettings(), seed: int = 0) -> dict:
    """AUC (%) of every score kind for every latent size, one training per size.

    Returns ``{(latent_dim, kind): auc}`` on the rows ``x_eval`` with labels ``y_eval``.
    """
    out = {}
    for latent_dim in latent_dims:
        det = AEDetector.train(x_train, replace(settings, latent_dim=latent_dim, noise=noise),
                               seed)
        for kind in AE_SCORES:
            out[latent_dim, kind] = 100 * roc_auc(det.score(x_eval, kind), y_eval)
    return out


def choose_ae(protocol: str, latent_dims=(4, 16, 64), noises=(0.0, 0.2), classes=range(10),
              settings: DetectorSettings = DetectorSettings(), progress: bool = True) -> dict:
    """Mean validation AUC (%) over ``classes`` (seed 0) of every autoencoder variant.

    Keys are ``(latent_dim, kind, noise)``; noisy variants are trained at the best clean
    latent size only.
    """
    x, labels = digits_classes()
    splits = [protocol_split(x, labels, protocol, c, 0) for c in classes]
    table = {}
    for noise in noises:
        dims = latent_dims if noise == noises[0] else (max(table, key=table.get)[0],)
        rows = [ae_variants(s.x_train, s.x_val, s.y_val, dims, noise, settings)
                for s in tqdm(splits, desc=f"noise {noise}", disable=not progress)]
        for key in rows[0]:
            table[(*key, noise)] = float(np.mean([r[key] for r in rows]))
    return table
