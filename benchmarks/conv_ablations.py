"""What it took to beat PCA in Chapter 5: one change at a time from the chapter's model, on validation.

    .venv/bin/python benchmarks/conv_ablations.py --names "no refinement,no mirror images" --out FILE.json

Each run trains through the chapter's own code path (``train_conv`` + ``evaluate_conv``: the
same species split, 8 epochs, seed 0, ``latent_dim`` 64, PCA fitted on exactly the images the
run trained on) and changes one thing. Only validation numbers are written: these runs are
choices, and choices are made on the validation species. Writes one JSON file with the
settings and metrics of every run (the chapter prints the ones shipped in aecore/checkpoints/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from aecore.conv_experiment import PLAIN_EPOCHS, ConvSettings, evaluate_conv, load_split, train_conv

RUNS = {
    "no refinement": dict(refine=0),
    "linear path frozen at PCA": dict(linear_lr_scale=0.0),
    "linear path at 0.1x the rate": dict(linear_lr_scale=0.1),
    "no mirror images": dict(flip=False),
    "24 epochs": dict(num_epochs=24),
    "plain without refinement": dict(linear_path=False, refine=0, num_epochs=PLAIN_EPOCHS),
}
VAL_KEYS = ("train_mse", "val_mse", "pca_val_mse", "val_object_mse", "pca_val_object_mse", "ratio_to_pca", "seconds")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", default=",".join(RUNS), help="comma-separated run names (default: all)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        sys.exit(f"error: unknown run(s) {unknown}; choose from {list(RUNS)}")
    base = ConvSettings()
    split = load_split(base)
    split.x_test = None  # validation only: the test species are not looked at here
    runs = []
    for name in names:
        settings = replace(base, **RUNS[name])
        start = time.perf_counter()
        model, history = train_conv(settings, split, progress=False)
        metrics = evaluate_conv(model, split, settings, time.perf_counter() - start, len(history.train_loss))
        runs.append({"name": name, "change": RUNS[name], "metrics": {k: metrics[k] for k in VAL_KEYS},
                     "history": {"val_loss": history.val_loss}})
        print(json.dumps({"name": name, "ratio_to_pca": metrics["ratio_to_pca"]}), flush=True)
    Path(args.out).write_text(json.dumps({"command": "python benchmarks/conv_ablations.py --names " + ",".join(names),
                                          "base_settings": asdict(base), "torch": torch.__version__,
                                          "threads": base.num_threads, "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
