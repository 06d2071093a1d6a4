"""The ``aecore`` command line: one subcommand per headline experiment of the book.

Each subcommand parses and validates its flags, then calls the same experiment function a
chapter calls, so the numbers a chapter prints and ``aecore ... --json`` prints come from
one code path. Bad input exits with status 2 and one ``error:`` line on stderr.

    aecore linear --data digits --latent 10 --json
"""

from __future__ import annotations

import argparse
import json
import sys

from aecore.errors import AecoreError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``error:`` line (no usage dump), exit 2."""

    def error(self, message):
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got '{text}'") from None


def _int_at_least(minimum: int, requirement: str):
    """An argparse type: an integer of at least ``minimum``, else ``must be <requirement>``."""
    def parse(text: str) -> int:
        value = _int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {requirement}; got {text}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "0 or more")


def _add_linear(sub) -> None:
    p = sub.add_parser("linear", help="train the NumPy linear autoencoder and compare it with PCA")
    p.add_argument("--data", required=True, help="'digits' or a .npy/.csv file with one sample per row")
    p.add_argument("--latent", type=_int, required=True, help="latent size k (1 <= k < number of features)")
    p.add_argument("--epochs", type=_non_negative_int, default=None, help="gradient-descent steps (default: the chapter's)")
    p.add_argument("--seed", type=_int, default=0, help="random seed for the split and the initial weights")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_run_linear)


def _run_linear(args) -> dict:
    from aecore.data import load_data
    from aecore.linear import run_linear_experiment

    split = load_data(args.data, seed=args.seed)
    return run_linear_experiment(split, latent_dim=args.latent, num_epochs=args.epochs, seed=args.seed)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got '{text}'") from None


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a PyTorch autoencoder (Chapter 2) and compare it with PCA")
    p.add_argument("--data", required=True, help="'digits' or a .npy/.csv file with one sample per row in [0, 1]; "
                   "for --model conv or vae: 'pokemon' or a folder of images")
    p.add_argument("--model", choices=["mlp", "conv", "vae"], default="mlp", help="model family (default: mlp); "
                   "vae: Chapter 7's variational autoencoder, scored on held-out data against probabilistic PCA")
    p.add_argument("--beta", type=_float, default=None, help="--model vae: weight of the KL term (default: 1)")
    p.add_argument("--linear", action="store_true", help="--model vae: the linear VAE (its optimum is PPCA)")
    p.add_argument("--size", type=_positive_int, default=64, help="--model conv or vae with images: image side "
                   "in pixels (default: 64)")
    p.add_argument("--latent", type=_int, required=True, help="latent size (1 <= k < number of features)")
    p.add_argument("--epochs", type=_int, default=None, help="training epochs (default: the chapter's; "
                   "for --model conv 8, or 24 with --plain)")
    p.add_argument("--batch-size", type=_int, default=None, help="samples per step (default: the chapter's)")
    p.add_argument("--lr", type=_float, default=None, help="peak learning rate (default: the chapter's)")
    p.add_argument("--seed", type=_int, default=0, help="random seed for the split, the weights and the shuffling "
                   "(--model conv: the species split is fixed; the seed sets the weights and the shuffling)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="default: auto")
    p.add_argument("--plain", action="store_true", help="--model conv: no linear path (the plain conv autoencoder)")
    p.add_argument("--save", metavar="CKPT", default=None, help="save the trained model to this checkpoint file "
                   "(with a .json record beside it)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_run_train)


PLAIN_NEEDS_CONV = "--plain belongs to --model conv (the conv autoencoder without its linear path)"


def _check_save(path) -> None:
    """A checkpoint's folder must exist before training starts, not after minutes of it."""
    from pathlib import Path

    if path and not Path(path).parent.is_dir():
        raise AecoreError(f"cannot save {path}: folder {Path(path).parent} does not exist; "
                          "create it first or choose another --save path")


def _run_train(args) -> dict:
    _check_save(args.save)
    if args.model == "vae":
        return _run_train_vae(args)
    if args.beta is not None or args.linear:
        raise AecoreError("--beta and --linear belong to --model vae")
    if args.model == "conv":
        return _run_train_conv(args)
    if args.plain:
        raise AecoreError(PLAIN_NEEDS_CONV)
    from aecore.data import load_data
    from aecore.experiments import MLPConfig, save_run, train_mlp_on
    from aecore.train import get_device

    config = MLPConfig()
    given = {"num_epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    config = config.with_fit(seed=args.seed, device=args.device, progress=not args.json,
                             **{k: v for k, v in given.items() if v is not None})
    get_device(args.device)  # an unavailable device fails before any work
    split = load_data(args.data, seed=args.seed)
    run = train_mlp_on(split, latent_dim=args.latent, config=config)
    if args.save:
        save_run(args.save, run, config, data=args.data)
    return dict(run.metrics, checkpoint=args.save)


def _run_train_vae(args) -> dict:
    """``aecore train --model vae``: the experiment functions Chapter 7 calls."""
    from dataclasses import replace
    from pathlib import Path

    from aecore import vae

    if args.plain:
        raise AecoreError("--plain belongs to --model conv (the conv autoencoder without its linear path)")
    beta = vae.check_beta(1.0 if args.beta is None else args.beta)
    if args.latent < 1:
        raise AecoreError(f"latent size must be a whole number of at least 1; got {args.latent}")
    given = {"num_epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    given = {k: v for k, v in given.items() if v is not None}
    if args.data == "pokemon" or Path(args.data).is_dir():
        return _run_train_conv_vae(args, beta, given)
    if args.save:
        raise AecoreError("--save belongs to images (--data pokemon or a folder); the Digits VAE "
                          "trains in seconds")
    settings = replace(vae.VAESettings(), latent_dim=args.latent, beta=beta, seed=args.seed)
    settings = settings.for_linear() if args.linear else settings
    settings = replace(settings, **given)
    settings.fit_config()  # bad epochs, batch size or rate fail before the data is read
    if args.device not in ("auto", "cpu"):
        raise AecoreError("--model vae on rows trains on the CPU (a small MLP); leave --device out")
    split = vae.load_vae_split(args.data, seed=args.seed)
    vae.check_vae_latent(args.latent, split.x_train.shape[1])
    result = vae.vae_experiment(split, settings, progress=not args.json)
    return {k: v for k, v in result.items() if k not in ("history", "trained")}


def _run_train_conv_vae(args, beta: float, given: dict) -> dict:
    """``aecore train --model vae --data pokemon|DIR``: Chapter 7's convolutional VAE."""
    from dataclasses import replace

    from aecore.conv_vae import ConvVAESettings, check_settings, conv_vae_experiment

    if args.linear:
        raise AecoreError("--linear belongs to rows (digits or a .npy/.csv file); images train "
                          "the convolutional VAE")
    settings = replace(ConvVAESettings(), data=args.data, size=args.size, latent_dim=args.latent,
                       beta=beta, seed=args.seed, device=args.device, **given)
    check_settings(settings)  # bad values fail before any image is read
    command = (f"aecore train --model vae --data {args.data} --size {settings.size} "
               f"--latent {settings.latent_dim} --beta {settings.beta:g} "
               f"--epochs {settings.num_epochs} --batch-size {settings.batch_size} "
               f"--lr {settings.lr:g} --seed {settings.seed} --device {args.device}"
               + (f" --save {args.save}" if args.save else ""))
    result = conv_vae_experiment(settings, save=args.save, command=command,
                                 progress=not args.json)
    result.pop("history")
    return dict(result, checkpoint=args.save)


def _run_train_conv(args) -> dict:
    """``aecore train --model conv``: the same experiment function Chapter 5 calls."""
    from dataclasses import replace

    from aecore.conv_experiment import PLAIN_EPOCHS, ConvSettings, run_conv_experiment
    from aecore.train import get_device

    epochs = args.epochs if args.epochs is not None or not args.plain else PLAIN_EPOCHS  # the chapter's, by model
    given = {"num_epochs": epochs, "batch_size": args.batch_size, "lr": args.lr}
    settings = replace(ConvSettings(), data=args.data, size=args.size, latent_dim=args.latent, seed=args.seed,
                       device=args.device, linear_path=not args.plain,
                       **{k: v for k, v in given.items() if v is not None})
    get_device(args.device)  # an unavailable device fails before any work
    command = (f"aecore train --model conv --data {args.data} --size {settings.size} --latent {settings.latent_dim} "
               f"{'--plain ' if args.plain else ''}--epochs {settings.num_epochs} --batch-size {settings.batch_size} "
               f"--lr {settings.lr:g} --seed {settings.seed} --device {args.device}"
               + (f" --save {args.save}" if args.save else ""))
    result = run_conv_experiment(settings, save=args.save, command=command, progress=not args.json)
    result.pop("history")
    return dict(result, checkpoint=args.save)


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="validation MSE against latent size over several seeds, beside PCA (Chapter 4)")
    p.add_argument("--data", required=True, help="'digits' or a .npy/.csv file with one sample per row in [0, 1]")
    p.add_argument("--model", choices=["mlp", "conv"], default="mlp", help="model family (default: mlp); "
                   "conv: Chapter 5's model with --data pokemon or a folder of images")
    p.add_argument("--plain", action="store_true", help="--model conv: no linear path (the plain conv autoencoder)")
    p.add_argument("--latent", required=True, help="comma-separated latent sizes, e.g. 1,2,4,8,16,32,64")
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds per latent size (default: 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object per latent size")
    p.set_defaults(func=_run_sweep, output=_print_sweep)


def _run_sweep(args) -> dict:
    from aecore.bottleneck import parse_latent_list, run_sweep
    from aecore.data import load_data

    latent_dims = parse_latent_list(args.latent)  # bad sizes fail before the data is read
    if args.plain and args.model != "conv":
        raise AecoreError(PLAIN_NEEDS_CONV)
    if args.model == "conv":
        from dataclasses import replace

        from aecore.conv_experiment import PLAIN_EPOCHS, ConvSettings, run_conv_sweep

        settings = replace(ConvSettings(), data=args.data, linear_path=not args.plain)
        settings = replace(settings, num_epochs=PLAIN_EPOCHS) if args.plain else settings
        return run_conv_sweep(settings, latent_dims, args.seeds, progress=not args.json)
    return run_sweep(load_data(args.data), latent_dims, args.seeds)


def _print_sweep(result: dict, as_json: bool) -> None:
    shared = {k: result[k] for k in ("data", "model", "n_train", "n_val", "seeds")}
    if as_json:
        for row in result["rows"]:
            print(json.dumps(dict(row, **shared)))
        return
    print(f"{result['data']}: {result['n_train']} training and {result['n_val']} validation samples, "
          f"{result['seeds']} seed(s) per size, {result['seconds']:.1f} s")
    print("latent_dim  val_mse_mean  val_mse_std  val_mse_min  val_mse_max  pca_val_mse")
    for r in result["rows"]:
        print(f"{r['latent_dim']:10d}  {r['val_mse_mean']:12.5f}  {r['val_mse_std']:11.5f}  "
              f"{r['val_mse_min']:11.5f}  {r['val_mse_max']:11.5f}  {r['pca_val_mse']:11.5f}")


def _add_denoise(sub) -> None:
    p = sub.add_parser("denoise", help="train a denoising autoencoder and compare it with the Wiener "
                       "filter, PCA and clipping on held-out noisy data (Chapter 6)")
    p.add_argument("--data", required=True, help="'digits' or a .npy/.csv file with one sample per row in "
                   "[0, 1] (MLP); 'pokemon' or a folder of images (--model conv)")
    p.add_argument("--noise", default="gaussian:0.3", help="corruption: gaussian:SIGMA, mask:P or patch:SIZE, "
                   "several joined by + (default: gaussian:0.3)")
    p.add_argument("--model", choices=["mlp", "conv"], default=None,
                   help="default: conv for pokemon or a folder, else mlp")
    p.add_argument("--epochs", type=_positive_int, default=None, help="training epochs (default: the chapter's)")
    p.add_argument("--seed", type=_int, default=0, help="initial weights and shuffling (default: 0)")
    p.add_argument("--save", metavar="CKPT", default=None, help="--model conv: save the trained model here")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_run_denoise)


def _run_denoise(args) -> dict:
    _check_save(args.save)
    from dataclasses import replace
    from pathlib import Path

    from aecore import denoising

    images = args.data == "pokemon" or Path(args.data).is_dir()
    model = args.model or ("conv" if images else "mlp")
    if model == "conv" and not images:
        raise AecoreError(f"--model conv needs images: --data pokemon or a folder; got '{args.data}'")
    if model == "mlp" and images:
        raise AecoreError("images train the convolutional denoiser: add --model conv (or leave --model out)")
    if args.save and model != "conv":
        raise AecoreError("--save belongs to --model conv (the MLP denoiser trains in seconds)")
    if model == "conv":
        from aecore.conv_experiment import ConvSettings

        settings = replace(ConvSettings(), data=args.data, seed=args.seed,
                           **({"num_epochs": args.epochs} if args.epochs else {}))
        denoising.parse_noise(args.noise, settings.size)  # a bad spec fails before any work
        command = (f"aecore denoise --data {args.data} --model conv --noise {args.noise} "
                   f"--epochs {settings.num_epochs} --seed {settings.seed}"
                   + (f" --save {args.save}" if args.save else ""))
        return denoising.conv_denoise_experiment(settings, args.noise, args.save, command,
                                                 progress=not args.json)
    denoising.parse_noise(args.noise)  # a bad spec fails before the data is read
    settings = replace(denoising.DenoiseSettings(), seed=args.seed,
                       **({"num_epochs": args.epochs} if args.epochs else {}))
    split = denoising.load_denoise_split(args.data)
    result = denoising.denoise_experiment(split, args.noise, settings, progress=not args.json)
    return {k: v for k, v in result.items() if k not in ("outputs", "y_test", "denoiser", "history")}


def _add_anomaly(sub) -> None:
    p = sub.add_parser("anomaly", help="anomaly detection: the autoencoder against PCA, KDE, "
                       "one-class SVM and Isolation Forest, ROC AUC in % (Chapter 8)")
    p.add_argument("--data", required=True, help="'digits' or a .npy/.csv file with one sample per row")
    p.add_argument("--labels", default=None, help="with a file: .npy/.csv with one 0/1 label per row "
                   "(1 = anomaly)")
    p.add_argument("--protocol", choices=["one-normal", "one-anomaly"], default="one-anomaly",
                   help="digits: one class normal, or one class the anomaly (default: one-anomaly)")
    p.add_argument("--classes", default=None, help="digits: comma-separated classes (default: 0,...,9)")
    p.add_argument("--seeds", type=_positive_int, default=3, help="digits: seeds (default: 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_run_anomaly, output=_print_anomaly)


def _run_anomaly(args) -> dict:
    from aecore import anomaly

    if args.data == "digits":
        if args.labels is not None:
            raise AecoreError("--labels belongs to --data FILE (Digits has its classes)")
        classes = anomaly.parse_classes(args.classes)  # bad lists fail before any work
        result = anomaly.run_protocol(args.protocol, classes, args.seeds, progress=not args.json)
        for entry in result["methods"].values():
            entry.pop("auc")
        return result
    from aecore.data import read_matrix

    if args.labels is None:
        raise AecoreError("--data FILE needs --labels FILE: one 0/1 label per row (1 = anomaly)")
    x, labels = read_matrix(args.data), anomaly.read_labels(args.labels)
    anomaly.check_labels(labels, len(x))  # before any training
    return dict(anomaly.run_matrix(x, labels), data=args.data)


def _print_anomaly(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    if "protocol" not in result:
        print(f"{result['data']}: trained on {result['n_train']} normal rows, scored "
              f"{result['n_test']} rows ({result['n_anomalies']} anomalies); ROC AUC in %")
        for name, entry in result["methods"].items():
            print(f"{name:<12} {entry['auc']:6.1f}")
        return
    classes = result["classes"]
    print(f"digits, {result['protocol']}, {result['seeds']} seed(s): ROC AUC in % on test rows")
    print(f"{'method':<12}" + "".join(f"{c:>6}" for c in classes) + "    mean    std")
    for name, entry in result["methods"].items():
        cells = "".join(f"{entry['per_class'][str(c)]:6.1f}" for c in classes)
        print(f"{name:<12}{cells}  {entry['mean']:6.1f}  {entry['std']:5.2f}")


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand registered."""
    parser = _Parser(prog="aecore", description="Experiments from 'Autoencoders from First Principles'.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_linear(sub)
    _add_train(sub)
    _add_sweep(sub)
    _add_denoise(sub)
    _add_anomaly(sub)
    return parser


def _print_table(result: dict) -> None:
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except AecoreError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if getattr(args, "output", None):
        args.output(result, args.json)
    elif args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
