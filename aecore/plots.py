"""Figures the chapters share, so a chapter cell says what it shows in one line.

Every function draws on a new (or given) matplotlib figure and returns it; the notebook
calls ``plt.show()``. No backend is chosen here. Imports no torch.
"""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _finish(ax, xlabel=None, ylabel=None, title=None, legend=False):
    """Axis labels, title, legend and a tight layout; returns the figure."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def image_grid(rows, row_labels=None, image_shape=(8, 8), col_labels=None, cmap="gray_r", scale=0.9, title=None,
               fontsize=None):
    """Rows of images side by side: ``rows`` is a list of ``(n_cols, H*W)`` (or ``(n_cols, H, W[, 3])``) arrays.

    Typical use: ``image_grid([x[:8], x_hat[:8]], ["input", "reconstruction"])``. ``fontsize`` sets
    the row and column labels (the title one point larger); by default 9, 8 and 10.
    """
    plt = _plt()
    rows = [np.asarray(r) for r in rows]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(scale * n_cols + 1.2, scale * n_rows + 0.3), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j >= len(row):
                continue
            img = row[j]
            if img.ndim == 1:
                img = img.reshape(image_shape)
            ax.imshow(np.clip(img, 0, 1), cmap=None if img.ndim == 3 else cmap, vmin=0, vmax=1)
            if i == 0 and col_labels is not None:
                ax.set_title(str(col_labels[j]), fontsize=fontsize or 8)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=fontsize or 9)
    if title:
        fig.suptitle(title, fontsize=fontsize + 1 if fontsize else 10)
    fig.tight_layout()
    return fig


def loss_curves(curves: dict, bound=None, bound_label="bound", xlabel="step", ylabel="MSE", logy=True,
                title=None, ax=None):
    """Loss curves from ``{label: values}``, optionally with a horizontal bound (a floor)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=label)
    if bound is not None:
        ax.axhline(bound, color="k", linestyle="--", linewidth=1, label=bound_label)
    if logy:
        ax.set_yscale("log")
    return _finish(ax, xlabel, ylabel, title, legend=True)


def rate_distortion(latent_dims, curves: dict, spreads: dict | None = None, title=None, ax=None):
    """Validation MSE against latent size for several methods: ``{label: mse per latent_dim}``.

    ``spreads`` maps a label to ``(low, high)`` arrays drawn as a band (e.g. min and max over seeds).
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for label, values in curves.items():
        ax.plot(latent_dims, values, marker="o", label=label)
        if spreads and label in spreads:
            low, high = spreads[label]
            ax.fill_between(latent_dims, low, high, alpha=0.25)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(latent_dims))
    ax.set_xticklabels([str(k) for k in latent_dims])
    return _finish(ax, "latent_dim", "validation MSE", title, legend=True)


def latent_scatter(z, labels, title=None, ax=None, cmap="tab10", legend_fontsize=7):
    """A 2-D code scatter coloured by label, with a legend of the label values."""
    plt = _plt()
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter needs 2-D codes of shape (n, 2); got {z.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap=cmap, s=6, alpha=0.8)
    ax.legend(*sc.legend_elements(), fontsize=legend_fontsize, loc="best", markerscale=0.8, title="label",
              title_fontsize=legend_fontsize)
    return _finish(ax, "$z_1$", "$z_2$", title)


def matrix_heatmap(m, xlabel="", ylabel="", title=None, ax=None, vmin=0.0, vmax=1.0, cmap="viridis", annotate=False,
                   annotate_fontsize=6, annotate_min=None):
    """A matrix as a heatmap with a colour bar (for example absolute cosines between two sets of directions).

    ``annotate=True`` writes each value in its cell (only values >= ``annotate_min`` when given).
    """
    plt = _plt()
    m = np.asarray(m)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.8, 3.3))
    im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap=cmap)
    if annotate:
        for (i, j), v in np.ndenumerate(m):
            if annotate_min is not None and v < annotate_min:
                continue
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=annotate_fontsize,
                    color="w" if v < (vmin + vmax) / 2 else "k")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _finish(ax, xlabel, ylabel, title)


def image_mosaic(images, low, high, image_shape=(8, 8), ax=None, cmap="gray_r", title=None, gap=0,
                 gap_value=0.3):
    """``n * n`` images (rows from the top) tiled over the box ``low..high`` of a 2-D plane.

    Typical use: decode :func:`aecore.latent.latent_grid` codes and draw them on the same axes
    limits as :func:`latent_scatter`, so each tile sits where its code lies. ``gap`` pixels of
    grey ``gap_value`` separate the tiles (0: tiles touch); each tile stays centred on its code.
    """
    plt = _plt()
    images = np.asarray(images)
    n = int(round(np.sqrt(len(images))))
    if n * n != len(images):
        raise ValueError(f"image_mosaic needs a square number of images; got {len(images)}")
    h, w = image_shape
    ph, pw = h + gap, w + gap  # pixels from one tile to the next
    tiles = np.full((n, n, ph, pw), float(gap_value))
    tiles[:, :, :h, :w] = images.reshape(n, n, h, w)
    tiles = tiles.transpose(0, 2, 1, 3).reshape(n * ph, n * pw)[: n * ph - gap, : n * pw - gap]
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    sx, sy = (high[0] - low[0]) / (n - 1), (high[1] - low[1]) / (n - 1)  # one grid step
    left, bottom = low[0] - sx * (w / 2) / pw, low[1] - sy * (h / 2) / ph  # tile centres on the grid
    ax.imshow(np.clip(tiles, 0, 1), cmap=cmap, vmin=0, vmax=1, aspect="auto",
              extent=(left, left + sx * (n * pw - gap) / pw, bottom, bottom + sy * (n * ph - gap) / ph))
    return _finish(ax, "$z_1$", "$z_2$", title)


def explained_variance(ratios, title=None, ax=None):
    """Fraction of the variance per principal direction (bars) and its running total (line)."""
    plt = _plt()
    ratios = np.asarray(ratios)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    i = np.arange(1, len(ratios) + 1)
    ax.bar(i, ratios, color="0.7", label="per direction")
    ax.plot(i, np.cumsum(ratios), color="C0", marker=".", label="cumulative")
    return _finish(ax, "principal direction $i$", "fraction of variance", title, legend=True)


def line_plot(x, curves: dict, xlabel="", ylabel="", logy=False, title=None, ax=None, styles=None):
    """Several curves over one x axis from ``{label: values}``; ``styles`` maps a label to plot keywords."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    for label, values in curves.items():
        ax.plot(x, values, label=label, **(styles or {}).get(label, {}))
    if logy:
        ax.set_yscale("log")
    return _finish(ax, xlabel, ylabel, title, legend=True)


def autoencoder_diagram(x, z, x_hat, image_shape=(8, 8), title=None):
    """Encoder -> code -> decoder, drawn with a real input ``x``, its code ``z`` and ``x_hat``.

    ``x`` and ``x_hat`` are one image each (flat or ``image_shape``); ``z`` is the code, one
    number per box (``latent_dim`` boxes).

    >>> fig = autoencoder_diagram(np.zeros(64), np.array([1.0, -2.0]), np.zeros(64))
    >>> len(fig.axes)
    3
    """
    plt = _plt()
    z = np.ravel(np.asarray(z, dtype=float))
    height_in = 3.7 if title else 3.35  # room for the code's label (and the title)
    fig = plt.figure(figsize=(8.0, height_in))
    ax = fig.add_axes([0, 0, 1, 1])  # the canvas: arrows, boxes and words in figure units
    ax.set_xlim(0, 8.0)
    ax.set_ylim(0, height_in)
    ax.axis("off")
    for left, img, label in [(0.25, x, "input $x$"), (6.15, x_hat, "reconstruction $\\hat{x}$")]:
        img_ax = fig.add_axes([left / 8.0, 0.7 / height_in, 1.6 / 8.0, 1.6 / height_in])
        img_ax.imshow(np.clip(np.reshape(img, image_shape), 0, 1), cmap="gray_r", vmin=0, vmax=1)
        img_ax.set_xticks([])
        img_ax.set_yticks([])
        ax.text(left + 0.8, 0.3, label, ha="center", va="top", fontsize=11)
    height = min(0.42, 2.4 / len(z))  # one box per code number, stacked around the middle
    top = 1.5 + height * len(z) / 2
    for i, value in enumerate(z):
        y = top - (i + 1) * height
        ax.add_patch(plt.Rectangle((3.55, y), 0.9, height, facecolor="#dbe9f6", edgecolor="k"))
        ax.text(4.0, y + height / 2, f"{value:.2f}", ha="center", va="center",
                fontsize=min(10, 30 * height))
    ax.text(4.0, top + 0.1, f"code $z$: {len(z)} numbers\n(latent_dim = {len(z)})", ha="center",
            va="bottom", fontsize=11)
    arrow = dict(arrowstyle="-|>", lw=2, color="0.25", mutation_scale=18)
    for start, end, label in [(1.95, 3.45, "encoder $f$"), (4.55, 6.05, "decoder $g$")]:
        ax.annotate("", xy=(end, 1.5), xytext=(start, 1.5), arrowprops=arrow)
        ax.text((start + end) / 2, 1.62, label, ha="center", va="bottom", fontsize=11)
    ax.text(1.95 + 0.75, 1.38, "$z = f(x)$", ha="center", va="top", fontsize=10)
    ax.text(4.55 + 0.75, 1.38, "$\\hat{x} = g(z)$", ha="center", va="top", fontsize=10)
    if title:
        ax.text(4.0, height_in - 0.08, title, ha="center", va="top", fontsize=11)
    return fig


def line_projection(points, direction, center=None, ax=None, title=None):
    """2-D points, a line through ``center`` along ``direction``, each point's projection onto it
    and the error segments between them; the title reports the summed squared segment lengths.

    >>> fig = line_projection(np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([1.0, 0.0]))
    >>> fig.axes[0].get_title()
    'summed squared error 0.000'
    """
    plt = _plt()
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"line_projection needs 2-D points of shape (n, 2); got {points.shape}")
    u = np.asarray(direction, dtype=float) / np.linalg.norm(direction)  # (2,) unit vector
    center = points.mean(axis=0) if center is None else np.asarray(center, dtype=float)
    t = (points - center) @ u  # (n, 2) @ (2,) -> (n,), position along the line
    proj = center + t[:, None] * u  # (n, 2)
    sse = float(np.sum((points - proj) ** 2))
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.0))
    reach = 1.15 * np.abs(t).max()
    ax.plot(*np.transpose([center - reach * u, center + reach * u]), color="C0", lw=1.5)
    for p, q in zip(points, proj):
        ax.plot([p[0], q[0]], [p[1], q[1]], color="C3", lw=1)
    ax.scatter(points[:, 0], points[:, 1], s=18, color="k", zorder=3, label="data point")
    ax.scatter(proj[:, 0], proj[:, 1], s=14, color="C0", zorder=3, label="its projection")
    ax.plot([], [], color="C3", lw=1, label="error segment")
    ax.set_aspect("equal", adjustable="box")  # right angles look right
    label = f"summed squared error {sse:.3f}"
    return _finish(ax, "$x_1$", "$x_2$", f"{title}\n{label}" if title else label, legend=True)


def vector_fields(points, fields: dict, title=None, scale=None, centers=None, width=0.004):
    """One panel per ``{label: (n, 2) vectors}``, arrows drawn at the ``(n, 2)`` ``points``.

    Used in Chapter 6 to set a learned denoiser's residual beside the exact score. Optional
    ``centers`` are marked by crosses; ``width`` is the arrows' shaft width (axes fraction).
    """
    plt = _plt()
    points = np.asarray(points, dtype=float)
    fig, axes = plt.subplots(1, len(fields), figsize=(3.8 * len(fields), 3.8), squeeze=False)
    for ax, (label, vectors) in zip(axes[0], fields.items()):
        v = np.asarray(vectors, dtype=float)
        v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)  # directions only
        ax.quiver(points[:, 0], points[:, 1], v[:, 0], v[:, 1], angles="xy", scale=scale or 25,
                  width=width, color="C0")
        if centers is not None:
            c = np.asarray(centers, dtype=float)
            ax.scatter(c[:, 0], c[:, 1], marker="x", s=80, linewidths=2.5, color="C3", zorder=3)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(label, fontsize=11)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def point_clouds(clouds: dict, centers=None, title=None, lim=3.2, ncols=None):
    """One scatter panel per ``{label: (n, 2) points}``, with optional ``centers`` marked by crosses.

    ``ncols`` panels per row (default: all in one row).
    """
    plt = _plt()
    ncols = ncols or len(clouds)
    nrows = -(-len(clouds) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(clouds):]:
        ax.axis("off")
    for ax, (label, pts) in zip(axes.flat, clouds.items()):
        pts = np.asarray(pts, dtype=float)
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color="C0")
        if centers is not None:
            c = np.asarray(centers, dtype=float)
            ax.scatter(c[:, 0], c[:, 1], marker="x", s=60, color="C3")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(label, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def grouped_bars(groups, values: dict, xlabel="", ylabel="", title=None, ax=None, ylim=None):
    """Bars grouped by ``groups`` (x ticks), one colour per key of ``values`` ``{label: heights}``.

    Typical use: per-class ROC AUC of several detectors, ``grouped_bars(range(10), aucs)``.
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    groups = list(groups)
    width = 0.8 / len(values)
    for i, (label, heights) in enumerate(values.items()):
        ax.bar(np.arange(len(groups)) + (i - (len(values) - 1) / 2) * width, heights, width,
               label=label)
    ax.set_xticks(np.arange(len(groups)), [str(g) for g in groups])
    if ylim is not None:
        ax.set_ylim(*ylim)
    return _finish(ax, xlabel, ylabel, title, legend=True)
