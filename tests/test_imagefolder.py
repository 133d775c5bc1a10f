"""The image-folder reader on tiny folders of images written here with PIL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dltui.data import imagefolder
from dltui.data.imagefolder import open_image_folder
from dltui.errors import DataError


def pixels(seed: int, size=(8, 8), rgb=False) -> np.ndarray:
    h, w = size
    shape = (h, w, 3) if rgb else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def folder(root: Path, per_class: dict[str, int], ext="png", rgb=False, size=(8, 8), start=0) -> Path:
    """``per_class`` images of random noise per class folder under ``root``."""
    seed = start
    for name, n in per_class.items():
        for i in range(n):
            save(root / name / f"{i:03d}.{ext}", pixels(seed, size, rgb))
            seed += 1
    return root


def split_folder(root: Path, rgb=False) -> Path:
    folder(root / "train", {"cat": 3, "dog": 2}, rgb=rgb)
    folder(root / "test", {"cat": 1, "dog": 2}, rgb=rgb, start=100)
    return root


DECODE_FILE = imagefolder._decode_file


class CountingDecoder:
    """Wraps the file decoder to count calls (and to fail, when a cache must be hit)."""

    def __init__(self, monkeypatch, fail=False):
        self.calls = 0
        self.fail = fail
        monkeypatch.setattr(imagefolder, "_decode_file", self)

    def __call__(self, path):
        self.calls += 1
        if self.fail:
            raise AssertionError(f"decoded {path} although the cache should have been used")
        return DECODE_FILE(path)


def one_line_error(call, *, names: Path | str) -> str:
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert str(names) in message
    return message


# --- decoding ------------------------------------------------------------------------------


def test_gray_png_and_jpeg_exact_order_and_record(tmp_path):
    root = split_folder(tmp_path / "pets")
    save(root / "train" / "dog" / "002.jpg", pixels(7))  # a JPEG among the PNGs
    d = open_image_folder(root)
    assert (d.task, d.kind, d.classes, d.input_shape) == ("classification", "image", ("cat", "dog"), (1, 8, 8))
    assert d.x_train.dtype == torch.uint8 and d.y_train.dtype == torch.int64
    assert d.y_train.tolist() == [0, 0, 0, 1, 1, 1] and d.y_test.tolist() == [0, 1, 1]
    assert d.scale == pytest.approx(1 / 255)
    # PNG is lossless: files come in sorted order and decode exactly
    assert torch.equal(d.x_train[0, 0], torch.from_numpy(pixels(0)))
    assert torch.equal(d.x_test[2, 0], torch.from_numpy(pixels(102)))
    jpeg = d.x_train[5, 0].float()
    assert (jpeg - torch.from_numpy(pixels(7)).float()).abs().mean() < 40  # lossy, but the same picture
    assert d.split == "train/ and test/ folders"
    f = d.x_train.double() / 255
    assert d.mean == pytest.approx((f.mean().item(),), abs=1e-12)
    assert d.std == pytest.approx((f.std(unbiased=False).item(),), abs=1e-12)
    labels = dict(d.report)
    assert set(labels) >= {"folder", "images", "classes", "image size", "skipped", "split", "input shape", "cache"}
    assert labels["images"] == "train 6 · test 3"
    assert "cat (3/1)" in labels["classes"] and labels["input shape"] == "1x8x8"
    assert d.notes == []


def test_gray_and_rgb_mixed_become_rgb_alpha_and_palette_converted(tmp_path):
    root = tmp_path / "mixed"
    gray = save(root / "a" / "0.png", pixels(1))
    rgb = pixels(2, rgb=True)
    save(root / "a" / "1.png", np.dstack([rgb, np.full((8, 8), 7, np.uint8)]))  # RGBA
    palette = Image.fromarray(pixels(3, rgb=True)).convert("P")
    (root / "b").mkdir()
    palette.save(root / "b" / "0.png")
    save(root / "b" / "1.gif", pixels(4))
    save(root / "b" / "2.webp", pixels(5, rgb=True), lossless=True)
    save(root / "b" / "3.bmp", pixels(6, rgb=True))  # torchvision cannot: PIL decodes it
    d = open_image_folder(root, test=split_dummy(tmp_path))
    assert d.input_shape == (3, 8, 8)
    x = d.x_train
    g = torch.from_numpy(np.array(Image.open(gray)))
    assert all(torch.equal(x[0, c], g) for c in range(3))  # gray repeated into R, G, B
    assert torch.equal(x[1], torch.from_numpy(rgb).permute(2, 0, 1))  # alpha dropped
    assert torch.equal(x[2], torch.from_numpy(np.array(palette.convert("RGB"))).permute(2, 0, 1))
    assert torch.equal(x[4], torch.from_numpy(pixels(5, rgb=True)).permute(2, 0, 1))
    assert torch.equal(x[5], torch.from_numpy(pixels(6, rgb=True)).permute(2, 0, 1))
    assert len(d.mean) == len(d.std) == 3


def split_dummy(tmp_path: Path) -> Path:
    """A separate test folder for the classes a and b."""
    return folder(tmp_path / "held-out", {"a": 1, "b": 1}, rgb=True, start=500)


def test_exif_orientation_16_bit_and_cmyk(tmp_path):
    root = tmp_path / "odd"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW": an 8 wide, 4 high picture is shown 4 wide, 8 high
    save(root / "a" / "0.jpg", pixels(1, (4, 8), rgb=True), exif=exif)
    save(root / "a" / "1.jpg", pixels(2, (8, 4), rgb=True))
    deep = (np.arange(32, dtype=np.uint16).reshape(8, 4) * 2000).astype(np.uint16)
    (root / "b").mkdir()
    Image.fromarray(deep).save(root / "b" / "0.png")
    cmyk = Image.fromarray(pixels(3, (8, 4), rgb=True)).convert("CMYK")
    cmyk.save(root / "b" / "1.jpg")
    test = folder(tmp_path / "t", {"a": 1, "b": 1}, size=(8, 4))
    d = open_image_folder(root, test=test)
    assert d.input_shape == (3, 8, 4) and d.notes == []  # the rotated one needed no resizing
    assert torch.equal(d.x_train[2, 0], torch.from_numpy((deep >> 8).astype(np.uint8)))
    want = torch.from_numpy(np.array(cmyk.convert("RGB"))).permute(2, 0, 1).float()
    assert (d.x_train[3].float() - want).abs().mean() < 40


def test_mixed_sizes_take_the_most_common_and_resize_like_torchvision(tmp_path):
    from torchvision.transforms.v2.functional import resize

    root = folder(tmp_path / "sizes", {"a": 3, "b": 3})
    odd = pixels(9, (13, 5))
    save(root / "b" / "zzz.png", odd)
    d = open_image_folder(root, test=folder(tmp_path / "t", {"a": 1, "b": 1}))
    assert d.input_shape == (1, 8, 8)
    assert "resized 1 image(s) to 8x8" in d.notes
    assert "1 resized" in dict(d.report)["image size"]
    want = resize(torch.from_numpy(odd)[None], [8, 8], antialias=True)
    assert torch.equal(d.x_train[-1], want)

    square = open_image_folder(root, image_size=6, cache_dir=tmp_path / "c")
    assert square.input_shape == (1, 6, 6)
    assert "resized 7 image(s) to 6x6" in square.notes


# --- splits --------------------------------------------------------------------------------


def test_random_split_is_80_20_and_deterministic_by_seed(tmp_path):
    root = folder(tmp_path / "r", {"a": 10, "b": 10})
    one, again = open_image_folder(root, seed=1), open_image_folder(root, seed=1)
    other = open_image_folder(root, seed=2)
    assert (len(one.y_train), len(one.y_test)) == (16, 4)
    assert torch.equal(one.x_train, again.x_train) and torch.equal(one.y_test, again.y_test)
    assert not torch.equal(one.x_test, other.x_test)
    assert one.split == "80/20 by --seed 1" and one.schema["split"] == {
        "method": "random",
        "seed": 1,
        "test_fraction": 0.2,
    }
    assert one.mean != other.mean  # statistics of the training split only


def test_test_folder_argument_and_classes_must_be_known(tmp_path):
    root = folder(tmp_path / "train-here", {"a": 2, "b": 2})
    elsewhere = folder(tmp_path / "elsewhere", {"b": 3})
    d = open_image_folder(root, test=elsewhere)
    assert (len(d.y_train), d.y_test.tolist()) == (4, [1, 1, 1])
    assert d.split == f"test folder {elsewhere}"
    folder(elsewhere, {"c": 1})
    one_line_error(lambda: open_image_folder(root, test=elsewhere), names=elsewhere)
    one_line_error(lambda: open_image_folder(root, test=tmp_path / "nope"), names=tmp_path / "nope")


def test_val_folder_is_a_test_split_and_train_alone_is_split_by_seed(tmp_path):
    root = tmp_path / "ds"
    folder(root / "train", {"a": 5, "b": 5})
    alone = open_image_folder(root)
    assert alone.classes == ("a", "b") and alone.split == "80/20 by --seed 0"
    folder(root / "val", {"a": 1, "b": 1}, start=50)
    with_val = open_image_folder(root)
    assert with_val.split == "train/ and val/ folders" and len(with_val.y_test) == 2


# --- damaged files -------------------------------------------------------------------------


def test_corrupt_and_truncated_images_are_skipped_and_counted(tmp_path):
    root = folder(tmp_path / "dmg", {"a": 10, "b": 10})
    (root / "a" / "000-garbage.png").write_bytes(os.urandom(300))
    whole = (root / "b" / "005.png").read_bytes()
    (root / "b" / "000-cut.png").write_bytes(whole[: len(whole) // 2])
    d = open_image_folder(root)
    assert len(d.y_train) + len(d.y_test) == 20
    assert any(n.startswith("skipped 2 unreadable image(s) (first: a/000-garbage.png") for n in d.notes)
    assert dict(d.report)["skipped"].startswith("2 unreadable (first: a/000-garbage.png")
    assert d.schema["skipped"] == {"count": 2, "first": "a/000-garbage.png"}


def test_too_many_or_all_bad_images_fail(tmp_path):
    root = folder(tmp_path / "bad", {"a": 4, "b": 4})
    (root / "a" / "x.png").write_bytes(b"not a png")
    message = one_line_error(lambda: open_image_folder(root), names=root)
    assert "1 of 9 images cannot be read (first: a/x.png" in message
    junk = tmp_path / "junk"
    for c in ("a", "b"):
        (junk / c).mkdir(parents=True)
        (junk / c / "0.jpg").write_bytes(b"")
    one_line_error(lambda: open_image_folder(junk), names=junk)


# --- cache ---------------------------------------------------------------------------------


def test_second_load_comes_from_the_cache_and_changes_invalidate_it(tmp_path, monkeypatch):
    root = folder(tmp_path / "c", {"a": 5, "b": 5})
    first = open_image_folder(root)
    cache = root / ".dltui-cache" / "images.pt"
    assert cache.is_file() and "(written" in dict(first.report)["cache"]
    blob = torch.load(cache, weights_only=True)  # plain tensors and a string: no pickled objects
    assert blob["x"].shape == (10, 1, 8, 8)

    CountingDecoder(monkeypatch, fail=True)
    hit = open_image_folder(root)
    assert "(loaded" in dict(hit.report)["cache"]
    assert torch.equal(hit.x_train, first.x_train) and hit.mean == first.mean and hit.schema == first.schema

    counter = CountingDecoder(monkeypatch)
    st = os.stat(root / "a" / "001.png")
    os.utime(root / "a" / "001.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    open_image_folder(root)
    assert counter.calls == 10
    save(root / "b" / "new.png", pixels(99))
    assert len(open_image_folder(root).y_train) + 2 == 11
    assert counter.calls == 21
    (root / "b" / "new.png").unlink()
    open_image_folder(root)
    assert counter.calls == 31
    open_image_folder(root)
    assert counter.calls == 31


def test_damaged_cache_is_rebuilt_and_unwritable_root_falls_back(tmp_path, monkeypatch):
    root = folder(tmp_path / "c", {"a": 3, "b": 3})
    open_image_folder(root)
    cache = root / ".dltui-cache" / "images.pt"
    cache.write_bytes(b"PK\x03\x04 truncated")
    counter = CountingDecoder(monkeypatch)
    d = open_image_folder(root)
    assert counter.calls == 6 and cache.stat().st_size > 100 and "(written" in dict(d.report)["cache"]

    other = folder(tmp_path / "ro", {"a": 3, "b": 3})
    (other / ".dltui-cache").write_text("a file where the cache folder would go")
    d = open_image_folder(other)
    where = Path(dict(d.report)["cache"].split(" (")[0])
    assert where.parent == tmp_path / "folders" and where.is_file()  # DLTUI_DATA_DIR is tmp_path/data
    assert d.notes == []
    CountingDecoder(monkeypatch, fail=True)
    open_image_folder(other)
    monkeypatch.undo()

    mine = tmp_path / "mine"
    open_image_folder(folder(tmp_path / "x", {"a": 3, "b": 3}), cache_dir=mine)
    assert len(list(mine.glob("*.pt"))) == 1 and not (tmp_path / "x" / ".dltui-cache").exists()


# --- schema --------------------------------------------------------------------------------


def test_schema_round_trip_gives_identical_tensors_and_does_not_infer(tmp_path, monkeypatch):
    root = folder(tmp_path / "s", {"a": 5, "b": 5})
    save(root / "a" / "wide.png", pixels(1, (8, 12)))
    first = open_image_folder(root, seed=3)
    schema = json.loads(json.dumps(first.schema))
    assert schema["image_size"] == [8, 8] and schema["mode"] == "gray" and schema["classes"] == ["a", "b"]
    again = open_image_folder(root, seed=3, schema=schema)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(again, name), getattr(first, name))
    assert (again.mean, again.std, again.input_shape) == (first.mean, first.std, first.input_shape)

    # the folder changes: an RGB image of another size, a new class; the schema still rules
    save(root / "b" / "colour.png", pixels(2, (16, 16), rgb=True))
    folder(root, {"c": 2}, start=70)
    d = open_image_folder(root, seed=3, schema=schema)
    assert d.input_shape == (1, 8, 8) and d.classes == ("a", "b")
    assert (d.mean, d.std) == (first.mean, first.std)
    assert any("ignored 1 class folder" in n and "c" in n for n in d.notes)

    for c in ("b", "c"):
        for p in (root / c).iterdir():
            p.unlink()
        (root / c).rmdir()
    message = one_line_error(lambda: open_image_folder(root, schema=schema), names=root)
    assert "'b'" in message
    one_line_error(lambda: open_image_folder(root, schema={"reader": "table"}), names=root)


# --- bad input -----------------------------------------------------------------------------


def test_every_bad_folder_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "missing"
    one_line_error(lambda: open_image_folder(missing), names=missing)
    a_file = tmp_path / "file.png"
    save(a_file, pixels(0))
    one_line_error(lambda: open_image_folder(a_file), names=a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(lambda: open_image_folder(empty), names=empty)
    no_images = tmp_path / "no-images"
    (no_images / "a").mkdir(parents=True)
    (no_images / "b").mkdir()
    (no_images / "b" / "notes.txt").write_text("not an image")
    one_line_error(lambda: open_image_folder(no_images), names=no_images)
    loose = tmp_path / "loose"
    save(loose / "0.png", pixels(0))
    assert "no class subfolders" in one_line_error(lambda: open_image_folder(loose), names=loose)
    single = folder(tmp_path / "single", {"only": 3})
    assert "only one class" in one_line_error(lambda: open_image_folder(single), names=single)
    (single / "empty-class").mkdir()
    assert "only one class" in one_line_error(lambda: open_image_folder(single), names=single)
    ok = folder(tmp_path / "ok", {"a": 3, "b": 3})
    one_line_error(lambda: open_image_folder(ok, image_size=0), names=ok)
    tiny = folder(tmp_path / "tiny", {"a": 1, "b": 1})
    one_line_error(lambda: open_image_folder(tiny), names=tiny)  # 2 images: no test split


def test_empty_class_and_hidden_folders_are_skipped(tmp_path):
    root = folder(tmp_path / "h", {"a": 3, "b": 3})
    (root / "empty").mkdir()
    folder(root / ".thumbnails", {"x": 2})
    save(root / "a" / ".hidden.png", pixels(3))
    d = open_image_folder(root)
    assert d.classes == ("a", "b")
    assert len(d.y_train) + len(d.y_test) == 6
    assert "skipped 1 class folder(s) with no images: empty" in d.notes


def test_threaded_decoding_keeps_file_order(tmp_path, monkeypatch):
    root = folder(tmp_path / "t", {"a": 40, "b": 30})
    save(root / "b" / "odd.png", pixels(5, (5, 9)))
    (root / "a" / "bad.png").write_bytes(b"\x89PNG broken")
    alone = open_image_folder(root, cache_dir=tmp_path / "c1")
    threads = []
    monkeypatch.setattr(imagefolder, "PARALLEL_MIN_S", 0.0)
    monkeypatch.setattr(imagefolder, "PROBE_FILES", 3)
    monkeypatch.setattr("dltui.config.usable_cores", lambda: 4)
    real = imagefolder._decode_chunk

    def chunk(files, size, channels):
        import threading

        threads.append(threading.current_thread().name)
        return real(files, size, channels)

    monkeypatch.setattr(imagefolder, "_decode_chunk", chunk)
    pooled = open_image_folder(root, cache_dir=tmp_path / "c2")
    assert any(name.startswith("dltui-decode") for name in threads)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(pooled, name), getattr(alone, name))
    assert pooled.notes == alone.notes and len(pooled.notes) == 2
