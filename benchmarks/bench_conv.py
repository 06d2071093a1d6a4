"""Training speed and peak memory of Chapter 5's ConvAutoencoder through aecore.train.fit.

    .venv/bin/python benchmarks/bench_conv.py [--device cpu|cuda|mps|auto] [--n 512] [--epochs 3] [--json]

Random images of the chapter's size stand in for Pokemon (speed does not depend on content).
Images per second is taken from the epochs after the first (warm-up, cuDNN autotuning).
Peak memory: the process's maximum resident set on CPU; torch's peak allocation on CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
from dataclasses import replace

import torch

from aecore.conv_experiment import ConvSettings
from aecore.models import count_parameters
from aecore.train import fit, get_device


def bench(device: str, n: int, num_epochs: int, settings: ConvSettings) -> dict:
    dev = get_device(device)
    x = torch.rand(n, 3, settings.size, settings.size, generator=torch.Generator().manual_seed(0))
    model = settings.model().init_from_data(x)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    config = replace(settings, num_epochs=num_epochs, device=str(dev)).fit_config(progress=False)
    history = fit(model, x, None, config)
    timed = history.epoch_seconds[1:] or history.epoch_seconds
    result = {"device": str(dev), "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else f"{platform.machine()} CPU, {os.cpu_count()} cores",
              "threads": config.num_threads or torch.get_num_threads(), "size": settings.size, "latent_dim": settings.latent_dim,
              "widths": list(settings.widths), "parameters": count_parameters(model),
              "batch_size": settings.batch_size, "n_images": n, "epochs_timed": len(timed),
              "images_per_second": n * len(timed) / sum(timed)}
    if dev.type == "cuda":
        result["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=512, help="number of random images per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = bench(args.device, args.n, args.epochs, ConvSettings())
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<20} {value:.1f}" if isinstance(value, float) else f"{key:<20} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
