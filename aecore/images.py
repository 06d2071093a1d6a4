"""Colour images as arrays: Pokemon artwork or any folder, preprocessed, split by species, cached.

Introduced in Chapter 5, "A convolutional autoencoder on Pokemon". Every image is decoded
(JPEG, PNG, GIF frame 0, ...), composited on white if it has transparency, cropped to the
object (the box of pixels that are not white), padded to a white square, resized and scaled to
[0, 1]. The result is ``x`` of shape ``(N, 3, size, size)``, float32. NumPy and Pillow only.

The repository holds no images: the 1008 official artworks come from the PyPI package
``pokemon==0.36``; ``--data DIR`` takes any folder. Decoded arrays are cached under
``$AECORE_CACHE`` (default ``~/.cache/aecore``), never in the repository.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from aecore.errors import AecoreError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
WHITE_THRESHOLD = 240  # a pixel with any channel below this is part of the object (JPEGs have no alpha)
CACHE_VERSION = 1  # bump when preprocessing changes, so old caches are rebuilt


@dataclass
class ImageData:
    """Preprocessed images: ``x`` is ``(N, 3, size, size)`` float32 in [0, 1].

    ``groups[i]`` is the species (or group) key of image ``i``: ``"25"`` for ``25.jpg``,
    ``shiny/25.gif`` and ``25-female.png`` alike, so a split keeps them together.
    ``skipped`` lists ``(file name, reason)`` for files that were not used.
    """

    x: np.ndarray
    names: list
    groups: list
    source: str
    skipped: list = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.x.shape[-1]


@dataclass
class ImageSplit:
    """Training, validation and (optionally) test images with no species on two sides.

    Validation species are for every choice; test species are for the final claims only.
    """

    x_train: np.ndarray
    x_val: np.ndarray
    names_train: list
    names_val: list
    groups_train: list
    groups_val: list
    source: str
    x_test: np.ndarray | None = None
    names_test: list = field(default_factory=list)
    groups_test: list = field(default_factory=list)


def pokemon_folder() -> Path:
    """The folder of 1008 artwork JPEGs inside the installed ``pokemon`` package."""
    spec = importlib.util.find_spec("pokemon")
    if spec is None or spec.origin is None:
        raise AecoreError("the Pokemon images come from the PyPI package 'pokemon': "
                          "run `pip install pokemon==0.36`, or pass a folder of your own images")
    folder = Path(spec.origin).parent / "database" / "images"
    if not folder.is_dir():
        raise AecoreError(f"the installed 'pokemon' package has no {folder}; reinstall it with "
                          "`pip install --force-reinstall pokemon==0.36`")
    return folder


def pokemon_names() -> dict:
    """Species id (as a string) to English name, from the ``pokemon`` package's JSON."""
    path = pokemon_folder().parent / "pokemons.json"
    return {k: v.get("name", k) for k, v in json.loads(path.read_text()).items()}


def pokemon_types() -> dict:
    """Species id (as a string) to its primary type (``"grass"``, ``"fire"``, ...), from the same JSON."""
    path = pokemon_folder().parent / "pokemons.json"
    return {k: (v.get("type") or ["unknown"])[0] for k, v in json.loads(path.read_text()).items()}


def group_key(name: str) -> str:
    """The species of a file: leading digits, else the file name up to the first ``-``/``_``.

    >>> [group_key(n) for n in ("25.jpg", "shiny/25.gif", "386-normal.gif", "Charizard-Mega-X.png")]
    ['25', '25', '386', 'charizard']
    """
    stem = Path(name).stem.lower()
    digits = re.match(r"\d+", stem)
    if digits:
        return str(int(digits.group()))
    return re.split(r"[-_ ]", stem)[0] or stem


def object_box(rgb: np.ndarray, threshold: int = WHITE_THRESHOLD):
    """``(top, left, bottom, right)`` of the pixels that are not white, or the whole image.

    >>> img = np.full((10, 10, 3), 255, np.uint8); img[2:5, 3:8] = 0
    >>> object_box(img)
    (2, 3, 5, 8)
    """
    mask = (rgb < threshold).any(axis=-1)  # (H, W): True on the object
    if not mask.any():
        return 0, 0, rgb.shape[0], rgb.shape[1]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def on_white(img: Image.Image) -> Image.Image:
    """Frame 0 as RGB, with any transparency (alpha or a GIF's palette index) composited on white."""
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def preprocess(img: Image.Image, size: int = 64) -> np.ndarray:
    """Composite on white, crop to the object, pad to a white square, resize: ``(size, size, 3)`` uint8.

    >>> img = Image.new("RGB", (160, 80), "white"); img.paste((200, 0, 0), (40, 20, 120, 60))
    >>> out = preprocess(img, size=8)
    >>> out.shape, out.dtype, out[0, 0].tolist(), out[4, 4].tolist()  # white band, then the red box
    ((8, 8, 3), dtype('uint8'), [255, 255, 255], [199, 0, 0])
    """
    rgb = np.asarray(on_white(img))  # (H, W, 3) uint8
    top, left, bottom, right = object_box(rgb)
    rgb = rgb[top:bottom, left:right]
    h, w = rgb.shape[:2]
    side = max(h, w)
    square = np.full((side, side, 3), 255, np.uint8)  # white square, object centred
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = rgb
    return np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS))


def _list_files(folder: Path):
    """Image files under ``folder`` (recursively, sorted) and ``(name, reason)`` for the rest."""
    files, skipped = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name.startswith(".") or "/." in name:
            continue  # hidden files (.DS_Store, .git) are not data
        if path.suffix.lower() in IMAGE_SUFFIXES:
            files.append(path)
        else:
            skipped.append((name, f"not an image file type ({path.suffix or 'no suffix'})"))
    return files, skipped


def _cache_key(folder: Path, files, size: int) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{folder.resolve()}|{size}|{WHITE_THRESHOLD}".encode())
    for path in files:
        st = path.stat()
        h.update(f"|{path.relative_to(folder).as_posix()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cache_dir() -> Path:
    """Where decoded images are cached: ``$AECORE_CACHE`` or ``~/.cache/aecore``."""
    return Path(os.environ.get("AECORE_CACHE") or Path.home() / ".cache" / "aecore")


def _read_cache(path: Path, key: str):
    """The cached ``(pixels, meta)`` if the file is intact and for this key, else ``None``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            pixels, meta = f["pixels"], json.loads(str(f["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None  # missing or corrupt: rebuild
    if meta.get("key") != key or meta.get("sha256") != hashlib.sha256(pixels.tobytes()).hexdigest():
        return None  # stale (files changed) or damaged: rebuild
    return pixels, meta


def _write_cache(path: Path, pixels: np.ndarray, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, pixels=pixels, meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)  # atomic: a crash never leaves half a cache
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _decode_all(folder: Path, files, size: int):
    """Decode and preprocess every file; byte-identical duplicates and unreadable files are skipped."""
    pixels, names, skipped, seen = [], [], [], {}
    for path in files:
        name = path.relative_to(folder).as_posix()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            skipped.append((name, f"duplicate of {seen[digest]}"))
            continue
        try:
            with Image.open(path) as img:
                pixels.append(preprocess(img, size))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            skipped.append((name, f"unreadable ({type(exc).__name__})"))
            continue
        seen[digest] = name
        names.append(name)
    return pixels, names, skipped


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def load_images(source="pokemon", size: int = 64, use_cache: bool = True) -> ImageData:
    """``"pokemon"`` or a folder of images, preprocessed to ``(N, 3, size, size)`` in [0, 1].

    Unreadable, non-image and duplicate files are skipped and listed in ``skipped``.
    """
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 512:
        raise AecoreError(f"size must be an integer between 8 and 512 pixels; got {size!r} (try 64)")
    folder = pokemon_folder() if str(source) == "pokemon" else Path(source).expanduser()
    if not folder.exists():
        raise AecoreError(f"folder not found: {folder}; pass 'pokemon' or a folder of .jpg/.png/.gif images")
    if not folder.is_dir():
        raise AecoreError(f"{folder} is a file; pass the folder that holds the images (or 'pokemon')")
    files, skipped = _list_files(folder)
    files.sort(key=lambda p: _natural(p.relative_to(folder).as_posix()))
    key = _cache_key(folder, files, size)
    path = cache_dir() / f"images-{key[:20]}.npz"
    cached = _read_cache(path, key) if use_cache else None
    if cached is None:
        pixels, names, bad = _decode_all(folder, files, size)
        pixels = np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8)
        meta = {"key": key, "sha256": hashlib.sha256(pixels.tobytes()).hexdigest(), "names": names,
                "skipped": skipped + bad, "source": str(folder), "size": size}
        if use_cache and len(names):
            _write_cache(path, pixels, meta)
    else:
        pixels, meta = cached
    if not meta["names"]:
        shown = ", ".join(n for n, _ in meta["skipped"][:5]) or "the folder is empty"
        raise AecoreError(f"no usable image in {folder} ({len(meta['skipped'])} file(s) skipped: {shown}); "
                          f"put {', '.join(IMAGE_SUFFIXES)} files there")
    x = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # (N, H, W, 3) uint8 -> (N, 3, H, W)
    names = list(meta["names"])
    return ImageData(x, names, [group_key(n) for n in names], str(folder), [tuple(s) for s in meta["skipped"]])


def split_by_species(data: ImageData, val_fraction: float = 0.1, seed: int = 0,
                     test_fraction: float = 0.0) -> ImageSplit:
    """Put whole species on one side: groups ordered by a seeded hash; the first ones validate.

    With ``test_fraction > 0`` the next ones form a third, test set. The order of a group does
    not depend on the other files, so adding images never moves a species across the split.
    At least one group goes to each side.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0 or (name == "val_fraction" and value == 0.0):
            raise AecoreError(f"{name} must be between 0 and 1; got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise AecoreError(f"val_fraction + test_fraction must leave species to train on; got "
                          f"{val_fraction} + {test_fraction}")
    keys = sorted(set(data.groups))
    sides = 3 if test_fraction > 0 else 2
    if len(keys) < sides:
        raise AecoreError(f"a split by species needs at least {sides} species; {data.source} has {len(keys)}. "
                          "Name files by species (e.g. 25.png, 25-shiny.png, 26.png)")
    keys.sort(key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    n_val = min(max(1, round(len(keys) * val_fraction)), len(keys) - sides + 1)
    n_test = 0 if test_fraction == 0 else min(max(1, round(len(keys) * test_fraction)), len(keys) - n_val - 1)
    side_of = {k: "val" for k in keys[:n_val]} | {k: "test" for k in keys[n_val:n_val + n_test]}
    where = np.array([side_of.get(g, "train") for g in data.groups])
    idx = {side: np.flatnonzero(where == side) for side in ("train", "val", "test")}

    def part(side):
        return data.x[idx[side]], [data.names[i] for i in idx[side]], [data.groups[i] for i in idx[side]]

    (x_tr, n_tr, g_tr), (x_val, n_val_, g_val), (x_te, n_te, g_te) = part("train"), part("val"), part("test")
    return ImageSplit(x_tr, x_val, n_tr, n_val_, g_tr, g_val, data.source,
                      x_te if n_test else None, n_te, g_te)
