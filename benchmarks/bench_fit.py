"""How fast is aecore's ``fit``? Steps per second against a DataLoader loop, and time to a target error.

    .venv/bin/python benchmarks/bench_fit.py [--repeats 5] [--threads 1] [--default-threads-too] [--json]

1. Steps per second of ``fit`` and of the loop readers would otherwise write
   (``DataLoader(TensorDataset(x), batch_size, shuffle=True)``), with the same model (Chapter 2's
   MLP at latent_dim 2), the same batch size, a constant learning rate and a validation pass per
   epoch in both. Runs alternate, and the median of ``--repeats`` runs is reported.
2. Wall time (model built, data moved, training, per-epoch validation) until the validation MSE
   at latent_dim 2 on Digits first reaches 0.036: Chapter 2's defaults (``MLPConfig``, built by
   ``build_mlp``) against the textbook setting (PyTorch's default initialisation, Adam 1e-3,
   batch 64, constant rate, hidden 128-64), both through ``fit``; and the textbook setting with
   the fused AdamW kernel, to separate the optimizer kernel's share of the speed-up.

Timings on a shared machine are noisy: the load average before and after is printed with them.
Both parts run every contender with the same number of CPU threads (``--threads``, default 1,
the chapter's setting); ``--default-threads-too`` also times the textbook setting with torch's
default thread count, which is what a reader's own loop would use.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from aecore.data import load_digits
from aecore.experiments import MLPConfig, build_mlp
from aecore.models import MLPAutoencoder
from aecore.train import FitConfig, fit, set_seed

TARGET = 0.036
# The textbook setting: PyTorch's default initialisation, Adam 1e-3, batch 64, constant rate, hidden 128-64.
TEXTBOOK = MLPConfig(hidden=(128, 64), init_output_bias=False,
                     fit=FitConfig(num_epochs=400, batch_size=64, lr=1e-3, schedule="constant",
                                   device="cpu", progress=False))


def dataloader_loop(model, x_train, x_val, num_epochs: int, batch_size: int, lr: float) -> int:
    """The plain loop: DataLoader over a TensorDataset, Adam, validation each epoch. Returns steps taken."""
    loader = DataLoader(TensorDataset(x_train), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = 0
    for _ in range(num_epochs):
        model.train()
        for (x,) in loader:
            loss = nn.functional.mse_loss(model(x), x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        model.eval()
        with torch.no_grad():
            nn.functional.mse_loss(model(x_val), x_val).item()
    return steps


def steps_per_second(split, repeats: int, num_epochs: int = 10) -> dict:
    """Median steps/s of fit (plain and with the chapter's fused AdamW) and of the DataLoader loop, alternating."""
    defaults = MLPConfig()
    batch_size, lr = defaults.fit.batch_size, 1e-3
    x_train = torch.tensor(split.x_train, dtype=torch.float32)
    x_val = torch.tensor(split.x_val, dtype=torch.float32)
    config = FitConfig(num_epochs=num_epochs, batch_size=batch_size, lr=lr, schedule="constant",
                       device="cpu", progress=False)
    n_steps = num_epochs * -(-len(x_train) // batch_size)
    fit_configs = {"fit": config, "fit, fused AdamW": replace(config, fused=True), "dataloader": None}
    rates = {name: [] for name in fit_configs}
    for _ in range(repeats):
        for name, fit_config in fit_configs.items():
            set_seed(0)
            model = MLPAutoencoder(64, 2, defaults.hidden)
            start = time.perf_counter()
            if fit_config is None:
                steps = dataloader_loop(model, x_train, x_val, num_epochs, batch_size, lr)
            else:
                fit(model, x_train, x_val, fit_config)
                steps = n_steps
            rates[name].append(steps / (time.perf_counter() - start))
    median = {name: statistics.median(runs) for name, runs in rates.items()}
    return {"batch_size": batch_size, "hidden": list(defaults.hidden), "epochs_per_run": num_epochs,
            "fit_steps_per_s": median["fit"], "fit_fused_steps_per_s": median["fit, fused AdamW"],
            "dataloader_steps_per_s": median["dataloader"], "ratio": median["fit"] / median["dataloader"],
            "ratio_fused": median["fit, fused AdamW"] / median["dataloader"], "all_runs": rates}


def time_to_target(split, config: MLPConfig) -> dict:
    """Seconds from building the model until the validation MSE first reaches TARGET (None if never)."""
    reached = {}
    start = time.perf_counter()

    def stop_at_target(epoch, history, model):
        if history.val_loss[-1] <= TARGET:
            reached.update(seconds=time.perf_counter() - start, epoch=epoch)
            return True
        return False

    model = build_mlp(split.x_train, 2, config)  # seeded; the defaults start at the mean image
    history = fit(model, split.x_train, split.x_val, config.fit, callbacks=[stop_at_target])
    return {"seconds": reached.get("seconds"), "epoch": reached.get("epoch"),
            "epochs_run": len(history.val_loss), "best_val_mse": min(history.val_loss)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs per contender: the DataLoader comparison repeats, the time to target uses seeds 0..N-1")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for every contender (default 1)")
    parser.add_argument("--default-threads-too", action="store_true",
                        help="also time the textbook setting with torch's default thread count (slow on a busy machine)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    split = load_digits()
    load_before = os.getloadavg()[0]
    fit(MLPAutoencoder(64, 2, (16,)), split.x_train, split.x_val, FitConfig(num_epochs=2, device="cpu", progress=False))

    speed = steps_per_second(split, args.repeats)
    defaults = MLPConfig().with_fit(device="cpu", progress=False, num_threads=args.threads)
    contenders = {
        "chapter defaults": defaults,
        "textbook": TEXTBOOK.with_fit(num_threads=args.threads),
        "textbook, fused AdamW": TEXTBOOK.with_fit(num_threads=args.threads, fused=True),  # the optimizer's share
    }
    if args.default_threads_too and default_threads != args.threads:
        contenders[f"textbook, {default_threads} threads"] = TEXTBOOK.with_fit(num_threads=default_threads)
    runs = {name: [] for name in contenders}
    for seed in range(args.repeats):  # alternate, so a burst of load hits every contender alike
        for name, config in contenders.items():  # seeds 0, 1, ...: the epoch count varies with the seed too
            runs[name].append(time_to_target(split, config.with_fit(seed=seed)))
    target = {}
    for name, results in runs.items():
        times = [r["seconds"] for r in results]
        target[name] = {"median_seconds": statistics.median(times) if None not in times else None,
                        "seconds": times, "epochs": [r["epoch"] for r in results]}
    def speedup(baseline: str):  # how many times faster the defaults are; None if either never reached TARGET
        t_def, t_base = target["chapter defaults"]["median_seconds"], target[baseline]["median_seconds"]
        return t_base / t_def if t_def and t_base else None

    result = {"threads": args.threads, "torch_default_threads": default_threads, "speed": speed,
              "target_val_mse": TARGET, "time_to_target": target,
              "speedup_defaults_vs_textbook": speedup("textbook"),
              "speedup_defaults_vs_textbook_fused": speedup("textbook, fused AdamW"),
              "load_average_before_after": [load_before, os.getloadavg()[0]]}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"threads: {args.threads}; load average before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f}")
        print(f"steps/s, batch {speed['batch_size']}, hidden {speed['hidden']}: DataLoader loop "
              f"{speed['dataloader_steps_per_s']:.0f}, fit {speed['fit_steps_per_s']:.0f} (ratio {speed['ratio']:.2f}), "
              f"fit with fused AdamW {speed['fit_fused_steps_per_s']:.0f} (ratio {speed['ratio_fused']:.2f})")
        print(f"time to validation MSE {TARGET} at latent_dim 2 (median over seeds 0-{args.repeats - 1}):")
        for name, t in target.items():
            shown = "never" if t["median_seconds"] is None else f"{t['median_seconds']:.2f} s"
            print(f"  {name:<24} {shown:>7}   seconds per seed: {[round(s, 2) if s else None for s in t['seconds']]}"
                  f"   epochs: {t['epochs']}")
        if result["speedup_defaults_vs_textbook"] and result["speedup_defaults_vs_textbook_fused"]:
            print(f"defaults are {result['speedup_defaults_vs_textbook']:.1f}x faster than the textbook setting "
                  f"({result['speedup_defaults_vs_textbook_fused']:.1f}x when the textbook setting also uses fused AdamW)")
    return result


if __name__ == "__main__":
    main()
