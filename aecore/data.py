"""Data sets as NumPy arrays: scikit-learn's Digits, a reader's own matrix, and splits.

Everything here returns ``float64`` arrays of shape ``(n_samples, n_features)`` and knows
nothing of torch, so Chapter 1 stays NumPy-only. Bad input raises :class:`~aecore.errors.AecoreError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aecore.errors import AecoreError

DIGITS_SIDE = 8  # Digits images are 8x8 pixels with values 0..16


@dataclass(frozen=True)
class Split:
    """A fixed train/validation split of one data set.

    ``x_train`` is ``(n_train, d)``, ``x_val`` is ``(n_val, d)``; ``y_*`` hold labels
    (or ``None`` for unlabelled data); ``image_shape`` is ``(H, W)`` when rows are images.
    """

    x_train: np.ndarray
    x_val: np.ndarray
    y_train: np.ndarray | None
    y_val: np.ndarray | None
    name: str
    image_shape: tuple[int, int] | None = None

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def check_matrix(x, name: str = "data", min_samples: int = 2) -> np.ndarray:
    """Return ``x`` as a finite 2-D float64 array, or raise a clear :class:`~aecore.errors.AecoreError`.

    >>> check_matrix([[0.0, 1.0], [2.0, 3.0]]).shape
    (2, 2)
    >>> check_matrix([[0.0, float("nan")], [1.0, 2.0]])
    Traceback (most recent call last):
    ...
    aecore.errors.AecoreError: data contains 1 NaN or infinite value(s) (first at row 0, column 1); remove or impute them first
    """
    if isinstance(x, np.ndarray) and np.iscomplexobj(x):
        raise AecoreError(f"{name} has complex values; pass real numbers (for example x.real or np.abs(x))")
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AecoreError(f"{name} must be a numeric matrix (one sample per row): {exc}") from None
    if x.ndim != 2:
        raise AecoreError(
            f"{name} must be 2-D (n_samples, n_features); got shape {x.shape}. "
            "Flatten images to one row per sample first, e.g. x.reshape(len(x), -1)"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise AecoreError(
            f"{name} contains {int(bad.sum())} NaN or infinite value(s) "
            f"(first at row {row}, column {col}); remove or impute them first"
        )
    if x.shape[0] < min_samples:
        raise AecoreError(f"{name} needs at least {min_samples} samples (rows); got {x.shape[0]}")
    if x.shape[1] < 1:
        raise AecoreError(f"{name} has no features (columns)")
    return x


def train_val_split(x, y=None, val_fraction: float = 0.2, seed: int = 0):
    """Shuffle rows with a fixed seed and split them; returns ``x_tr, x_val, y_tr, y_val``.

    At least one sample goes to each side.

    >>> x_tr, x_val, _, _ = train_val_split(np.arange(10.0).reshape(5, 2), val_fraction=0.4)
    >>> x_tr.shape, x_val.shape
    ((3, 2), (2, 2))
    """
    if not 0.0 < val_fraction < 1.0:
        raise AecoreError(f"val_fraction must be between 0 and 1; got {val_fraction}")
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    val, tr = order[:n_val], order[n_val:]
    y_tr = None if y is None else y[tr]
    y_val = None if y is None else y[val]
    return x[tr], x[val], y_tr, y_val


def load_digits(val_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 1797 handwritten Digits, pixels scaled to [0, 1], fixed split.

    >>> s = load_digits()
    >>> s.x_train.shape, s.x_val.shape, float(s.x_train.max())
    ((1438, 64), (359, 64), 1.0)
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    x = bunch.data.astype(np.float64) / 16.0  # (1797, 64), values in [0, 1]
    y = bunch.target.astype(np.int64)  # (1797,)
    x_tr, x_val, y_tr, y_val = train_val_split(x, y, val_fraction, seed)
    return Split(x_tr, x_val, y_tr, y_val, "digits", (DIGITS_SIDE, DIGITS_SIDE))


def one_per_class(y, per_class: int = 1) -> np.ndarray:
    """Indices of the first ``per_class`` samples of each label, in label order.

    Figures of reconstructions use it so that every digit appears (the first rows of a split
    are mostly whatever label happens to come first).

    >>> one_per_class(np.array([6, 6, 1, 0, 1, 6]))
    array([3, 2, 0])
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise AecoreError(f"one_per_class needs a non-empty 1-D array of labels; got shape {y.shape}")
    return np.concatenate([np.flatnonzero(y == label)[:per_class] for label in np.unique(y)])


def read_matrix(path) -> np.ndarray:
    """Read a reader's matrix from ``.npy`` or ``.csv`` (one sample per row), validated."""
    path = Path(path)
    if not path.exists():
        raise AecoreError(f"file not found: {path}; pass 'digits' or the path of a .npy or .csv file")
    if path.is_dir():
        raise AecoreError(f"{path} is a folder; pass a .npy or .csv file with one sample per row")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise AecoreError(f"cannot read {path} as a NumPy .npy file ({exc}); save it with np.save") from None
    elif suffix == ".csv":
        x = _read_csv(path)
    else:
        raise AecoreError(f"unsupported file type '{suffix}' for {path}; use .npy or .csv")
    return check_matrix(x, name=str(path))


def _read_csv(path: Path) -> np.ndarray:
    """Parse a numeric CSV; a header line is allowed, ragged or non-numeric rows are not."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise AecoreError(f"cannot read {path} as text ({exc}); is it really a CSV file?") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise AecoreError(f"{path} is empty; it needs one sample per row")
    rows, width = [], None
    for lineno, line in enumerate(lines, start=1):
        cells = [c.strip() for c in line.split(",")]
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if lineno == 1 and not rows:  # a header line
                continue
            raise AecoreError(
                f"{path}, line {lineno}: non-numeric value in {line[:60]!r}; every cell must be a number"
            ) from None
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise AecoreError(
                f"{path}, line {lineno}: {len(values)} columns but earlier rows have {width}; "
                "every row needs the same number of columns"
            )
        rows.append(values)
    if not rows:
        raise AecoreError(f"{path} has a header but no data rows")
    return np.array(rows)


def load_data(source: str, val_fraction: float = 0.2, seed: int = 0) -> Split:
    """``'digits'`` or the path of a ``.npy``/``.csv`` matrix, split into train and validation."""
    if source == "digits":
        return load_digits(val_fraction, seed)
    x = read_matrix(source)
    x_tr, x_val, _, _ = train_val_split(x, None, val_fraction, seed)
    return Split(x_tr, x_val, None, None, Path(source).name)
