"""What it took to beat PCA in Chapter 5: the runs behind its "what did not work" table.

    .venv/bin/python benchmarks/conv_ablations.py [--out checkpoints/conv_pokemon_ablations.json]

Each run trains through the chapter's own code path (``train_conv`` + ``evaluate_conv``: the
same species split, PCA fitted on exactly the images the run trained on) and changes one thing
from the chapter's settings. Writes one JSON file with the settings and metrics of every run.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from aecore.conv_experiment import ConvSettings, evaluate_conv, train_conv
from aecore.images import load_images, split_by_species

RUNS = {
    "plain, no mirrors, 12 epochs": dict(linear_path=False, flip=False, num_epochs=12),
    "plain, batch 64, 12 epochs": dict(linear_path=False, batch_size=64, num_epochs=12),
    "plain, 12 epochs": dict(linear_path=False, num_epochs=12),
    "plain, 40 epochs": dict(linear_path=False, num_epochs=40),
    "PCA path, 12 epochs": dict(num_epochs=12),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="checkpoints/conv_pokemon_ablations.json")
    args = parser.parse_args()
    base = ConvSettings(device="cpu")
    split = split_by_species(load_images(base.data, base.size), base.val_fraction, base.seed)
    runs = []
    for name, change in RUNS.items():
        settings = replace(base, **change)
        start = time.perf_counter()
        model, history = train_conv(settings, split, progress=False)
        metrics = evaluate_conv(model, split, settings, time.perf_counter() - start, len(history.train_loss))
        runs.append({"name": name, "change": change, "metrics": metrics})
        print(json.dumps({"name": name, "val_mse": metrics["val_mse"], "pca_val_mse": metrics["pca_val_mse"]}), flush=True)
    Path(args.out).write_text(json.dumps({"base_settings": asdict(base), "torch": torch.__version__,
                                          "threads": torch.get_num_threads(), "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
