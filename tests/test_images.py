"""aecore.images on a small folder of images the test writes itself (no Pokemon needed)."""

import numpy as np
import pytest
from PIL import Image

from aecore.errors import AecoreError
from aecore.images import (ImageData, cache_dir, group_key, load_images, on_white, pokemon_folder, preprocess,
                           split_by_species)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_CACHE", str(tmp_path / "cache"))


def _square(colour, size=(40, 30), box=(10, 5, 30, 25), mode="RGB", background="white"):
    img = Image.new(mode, size, background)
    img.paste(colour, box)
    return img


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    (d / "shiny").mkdir(parents=True)
    _square((255, 0, 0)).save(d / "1.jpg", quality=95)
    _square((0, 0, 255)).save(d / "2.png")
    _square((0, 0, 200)).save(d / "2-female.png")
    _square((0, 255, 0)).save(d / "3.png")
    _square((0, 255, 0)).save(d / "3b.png")  # byte-identical to 3.png
    _square((0, 120, 0)).save(d / "shiny" / "3.png")
    (d / "4.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    (d / "notes.txt").write_text("not an image")
    gif = Image.new("P", (20, 20), 0)
    gif.putpalette([0, 0, 0, 200, 100, 0] + [0] * 762)  # index 0 black (transparent), 1 orange
    gif.paste(1, (4, 8, 16, 12))  # a wide bar: the square gets white bands
    gif.save(d / "5.gif", transparency=0)
    return d


def test_group_key_keeps_forms_and_shinies_together():
    assert group_key("25.jpg") == group_key("shiny/25.gif") == group_key("025-female.png") == "25"
    assert group_key("Pikachu_2.png") == group_key("pikachu.jpg") == "pikachu"


def test_preprocess_crops_to_the_object_pads_white_and_scales():
    out = preprocess(_square((200, 0, 0), size=(100, 50), box=(40, 10, 60, 30)), size=16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out[8, 8].tolist() == [200, 0, 0]  # the square object fills the frame
    wide = preprocess(_square((0, 0, 0), size=(100, 100), box=(10, 40, 90, 60)), size=16)
    assert (wide[0] == 255).all() and (wide[8] < 40).all()  # 80x20 object: white bands above and below


def test_gif_transparency_is_composited_on_white_not_black():
    gif = Image.new("P", (10, 10), 0)
    gif.putpalette([0, 0, 0] + [0] * 765)
    gif.info["transparency"] = 0
    assert np.asarray(on_white(gif)).min() == 255
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert np.asarray(on_white(rgba)).min() == 255


def test_folder_loads_skips_and_reports(folder):
    data = load_images(folder, size=16)
    assert isinstance(data, ImageData)
    assert data.x.shape == (6, 3, 16, 16) and data.x.dtype == np.float32
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    assert data.names == ["1.jpg", "2-female.png", "2.png", "3.png", "5.gif", "shiny/3.png"]
    skipped = dict(data.skipped)
    assert set(skipped) == {"3b.png", "4.png", "notes.txt"}
    assert "duplicate of 3.png" in skipped["3b.png"] and "unreadable" in skipped["4.png"]
    gif = data.x[data.names.index("5.gif")]
    assert gif[:, 0, 0].tolist() == [1.0, 1.0, 1.0]  # corner: white, not the palette's black
    assert abs(gif[0, 8, 8] - 200 / 255) < 0.02  # centre: the orange object


def test_split_by_species_never_leaks_and_is_deterministic(folder):
    data = load_images(folder, size=16)
    for seed in range(10):
        s = split_by_species(data, val_fraction=0.3, seed=seed)
        assert not set(s.groups_train) & set(s.groups_val)
        assert len(s.x_train) + len(s.x_val) == len(data.x) and len(s.x_val) >= 1
        assert ("2.png" in s.names_val) == ("2-female.png" in s.names_val)
        assert ("3.png" in s.names_val) == ("shiny/3.png" in s.names_val)
    again = split_by_species(data, val_fraction=0.3, seed=3)
    assert again.names_val == split_by_species(data, val_fraction=0.3, seed=3).names_val
    assert {tuple(split_by_species(data, 0.3, seed=k).names_val) for k in range(10)} != {tuple(again.names_val)}


def test_three_way_split_keeps_species_apart_and_validation_where_it_was(folder):
    data = load_images(folder, size=16)
    two = split_by_species(data, val_fraction=0.25, seed=1)
    three = split_by_species(data, val_fraction=0.25, seed=1, test_fraction=0.25)
    assert three.names_val == two.names_val  # adding a test set leaves the validation species in place
    sides = [set(three.groups_train), set(three.groups_val), set(three.groups_test)]
    assert all(sides) and not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert len(three.x_train) + len(three.x_val) + len(three.x_test) == len(data.x)
    assert set(three.names_train) < set(two.names_train) and two.x_test is None
    with pytest.raises(AecoreError, match="leave species to train on"):
        split_by_species(data, val_fraction=0.5, test_fraction=0.5)


def test_cache_is_reused_rebuilt_when_stale_and_when_corrupt(folder):
    first = load_images(folder, size=16)
    files = list(cache_dir().glob("images-*.npz"))
    assert len(files) == 1
    cached = load_images(folder, size=16)
    np.testing.assert_array_equal(cached.x, first.x)
    assert cached.skipped == first.skipped
    files[0].write_bytes(b"garbage")  # corrupt: rebuilt and rewritten
    np.testing.assert_array_equal(load_images(folder, size=16).x, first.x)
    assert files[0].stat().st_size > 100
    _square((9, 9, 9)).save(folder / "6.png")  # stale: a new file changes the key
    assert len(load_images(folder, size=16).x) == 7
    assert len(load_images(folder, size=8).x) == 7  # other settings, other entry
    assert len(list(cache_dir().glob("images-*.npz"))) == 3


def test_cache_with_a_wrong_checksum_is_rebuilt(folder):
    first = load_images(folder, size=16)
    path = next(cache_dir().glob("images-*.npz"))
    with np.load(path) as f:
        pixels, meta = f["pixels"].copy(), f["meta"]
    pixels[0, 0, 0, 0] ^= 1  # one bit flipped, checksum no longer matches
    np.savez_compressed(path, pixels=pixels, meta=meta)
    np.testing.assert_array_equal(load_images(folder, size=16).x, first.x)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "folder not found"),
    (lambda p: (p / "a.png").write_bytes(b"x") and p / "a.png", "is a file"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no usable image"),
    (lambda p: (p / "bad").mkdir() or (p / "bad" / "1.png").write_bytes(b"no") and p / "bad", "1.png"),
])
def test_bad_folders_raise_a_clear_error(tmp_path, make, message):
    with pytest.raises(AecoreError, match=message):
        load_images(make(tmp_path), size=16)


def test_bad_settings_raise(folder):
    with pytest.raises(AecoreError, match="size"):
        load_images(folder, size=3)
    data = load_images(folder, size=16)
    with pytest.raises(AecoreError, match="val_fraction"):
        split_by_species(data, val_fraction=1.5)
    one = ImageData(data.x[:2], data.names[:2], ["1", "1"], "x")
    with pytest.raises(AecoreError, match="at least 2 species"):
        split_by_species(one)


def test_pokemon_folder_is_found_through_the_installed_package():
    folder = pokemon_folder()
    assert folder.name == "images" and (folder / "25.jpg").is_file()
    assert len(list(folder.glob("*.jpg"))) == 1008
