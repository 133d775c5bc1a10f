"""A user's own folder of images, in torchvision ImageFolder's layout, as uint8 tensors.

``ROOT/<class>/**/*.png`` (jpg, bmp, gif, webp, tif, ...): class names are the sorted
subfolder names, the same labels ``torchvision.datasets.ImageFolder`` gives. When
``ROOT/train/<class>`` and ``ROOT/test/<class>`` (or ``val/``) exist they are the split;
``test=`` names another test folder; otherwise an 80/20 split by seed.

Every file is decoded once, with torchvision's decoders (PIL for what they cannot read),
into one ``(N, C, H, W)`` uint8 tensor of a single size and mode, and the result is cached
(a plain ``torch.save`` dict of tensors and a JSON string: no pickled objects) keyed on
the list of files with their sizes and mtimes, so the next run starts at once. Importing
torchvision costs seconds, so a cache hit never does.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.data.own import OwnData
from dltui.errors import DataError

if TYPE_CHECKING:
    import torch

READER_VERSION = 1  # bump when decoding changes what a file becomes: old caches are then rebuilt
EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff"}
)  # torchvision's IMG_EXTENSIONS plus .gif and .pbm, matched case-insensitively
TEST_FOLDERS = ("test", "val", "valid", "validation")  # beside ROOT/train/: the official test split
SKIP_NAMES = ("__MACOSX",)  # what unzipping a macOS archive leaves: never a class
MAX_BAD_FRACTION = 0.10
TEST_FRACTION = 0.2
CACHE_FOLDER = ".dltui-cache"
# Decoding runs in threads only when a file costs more than this: torchvision's decoders
# release the GIL, but for MNIST-sized PNGs (~20 us of decode) the Python around each call
# dominates and two threads were slower than one (0.28-0.55 s vs 0.22 s for 10,000 files);
# for 256x256 JPEGs (~500 us) two threads halved the time.
PARALLEL_MIN_S = 150e-6
PROBE_FILES = 256  # decoded in the calling thread first, to time a file


@dataclass(frozen=True)
class _File:
    path: str
    name: str  # as shown to the user: relative to ROOT where it lies under ROOT
    key: str  # split tag + path under its split's folder: stable when ROOT moves
    label: int
    test: bool
    size: int
    mtime_ns: int


def _fail(root: Path, message: str) -> DataError:
    return DataError(f"image folder {root}: {message}")


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in SKIP_NAMES


def _subfolders(folder: Path) -> dict[str, Path]:
    """Visible subfolders by name, sorted as torchvision's ``find_classes`` sorts them."""
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if not _hidden(e.name) and e.is_dir()]
    except OSError as exc:
        raise _fail(folder, f"cannot be listed ({exc.strerror or exc})") from None
    return {e.name: Path(e.path) for e in sorted(entries, key=lambda e: e.name)}


def _images_under(folder: Path) -> list[tuple[str, str, os.stat_result]]:
    """Image files below ``folder``, recursively and following links as ImageFolder does,
    as (path under ``folder`` with '/', path, stat), sorted. Plain strings and scandir: at
    10,000 files pathlib alone cost 0.3 s."""
    found: list[tuple[str, str, os.stat_result]] = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of folders walked: a link loop ends

    def walk(here: str, rel: str) -> None:
        try:
            st = os.stat(here)
            if (st.st_dev, st.st_ino) in seen:
                return
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if _hidden(e.name):
                continue
            try:
                if e.is_dir():
                    walk(e.path, f"{rel}{e.name}/")
                elif os.path.splitext(e.name)[1].lower() in EXTENSIONS:
                    found.append((rel + e.name, e.path, e.stat()))
            except OSError:  # a dangling link: nothing to read, and nothing to key the cache on
                continue

    walk(str(folder), "")
    return found


def _layout(root: Path, test: Path | None) -> tuple[Path, Path | None]:
    """(training folder, official test folder or None)."""
    if not root.exists():
        raise _fail(root, "does not exist")
    if not root.is_dir():
        raise _fail(root, "is not a folder (give the folder that holds one subfolder per class)")
    train = root / "train"
    train_dir = train if train.is_dir() and _subfolders(train) else root
    if test is not None:
        if not test.is_dir():
            problem = "is not a folder" if test.exists() else "does not exist"
            raise DataError(f"test folder {test}: {problem}")
        return train_dir, test
    if train_dir is root:
        return root, None
    for name in TEST_FOLDERS:
        if (root / name).is_dir() and _subfolders(root / name):
            return train_dir, root / name
    return train_dir, None


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` ('' for ``root``) where it lies under it, else in full."""
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
    return "" if rel == "." else rel


def _files(
    root: Path, split_dir: Path, test: bool, c: str, label: int, found: list[tuple[str, str, os.stat_result]]
) -> list[_File]:
    shown = _shown(split_dir, root)
    prefix = f"{shown}/{c}/" if shown else f"{c}/"
    tag = "test" if test else "train"
    return [
        _File(path, prefix + rel, f"{tag}:{c}/{rel}", label, test, st.st_size, st.st_mtime_ns)
        for rel, path, st in found
    ]


def _scan(
    root: Path, train_dir: Path, test_dir: Path | None, fixed_classes: list[str] | None
) -> tuple[list[str], list[_File], list[str]]:
    """Classes, image files (train then test, each sorted by class then path) and notes."""
    notes: list[str] = []
    folders = _subfolders(train_dir)
    found = {name: _images_under(path) for name, path in folders.items()}
    if fixed_classes is not None:
        missing = [c for c in fixed_classes if c not in folders]
        if missing:
            raise _fail(
                root,
                f"has no class folder {missing[0]!r} "
                f"(the saved run was trained on {len(fixed_classes)} classes: {', '.join(fixed_classes)})",
            )
        extra = [c for c in folders if c not in fixed_classes and found[c]]
        if extra:
            notes.append(f"ignored {len(extra)} class folder(s) the saved run does not know: {', '.join(extra)}")
        classes = list(fixed_classes)
    else:
        if not any(found.values()):
            loose = [p for p in train_dir.iterdir() if p.suffix.lower() in EXTENSIONS]
            if loose:
                raise _fail(
                    root,
                    f"holds {len(loose)} images but no class subfolders: put each class's images in {root}/<class>/",
                )
            raise _fail(root, f"holds no images ({', '.join(sorted(EXTENSIONS))}) in class subfolders")
        empty = [c for c, files in found.items() if not files]
        classes = [c for c, files in found.items() if files]
        if empty:
            notes.append(f"skipped {len(empty)} class folder(s) with no images: {', '.join(empty)}")
        if len(classes) < 2:
            raise _fail(
                root, f"has only one class folder with images ({classes[0]!r}); a classifier needs at least two"
            )
    label = {c: i for i, c in enumerate(classes)}
    files = [f for c in classes for f in _files(root, train_dir, False, c, label[c], found[c])]
    if test_dir is not None:
        for c, path in _subfolders(test_dir).items():
            images = _images_under(path)
            if c not in label:
                if not images:
                    continue
                if fixed_classes is not None:
                    notes.append(f"ignored test class folder {c!r}: the saved run does not know it")
                    continue
                raise _fail(
                    test_dir,
                    f"has class folder {c!r} with images, "
                    f"but the training folder {train_dir} has no images of that class",
                )
            files += _files(root, test_dir, True, c, label[c], images)
    return classes, files, notes


# --- decoding ----------------------------------------------------------------------------

_PNG = b"\x89PNG\r\n\x1a\n"
# a 1x1 white gray PNG: what the decoder must turn into tensor([[[255]]])
_PROBE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
    "0000000a49444154789c63f80f0001010100b138f6140000000049454e44ae426082"
)


# ImageReadMode's values, fixed since torchvision 0.8
_UNCHANGED, _RGB = 0, 3


@functools.cache
def _decoder() -> Callable[[torch.Tensor, int], torch.Tensor]:
    """torchvision's ``decode_image`` op, taking (encoded bytes, ImageReadMode value) and
    applying EXIF orientation.

    The op lives in torchvision's own ``image`` extension library, which is loaded here
    without importing the torchvision package: that import pulls in torch._dynamo and cost
    3.1 s and ~170 MB here, more than decoding 10,000 MNIST PNGs. Where the library is not
    found or its op does not answer as expected, the public ``torchvision.io`` is used."""
    import importlib.util

    import torch

    try:
        spec = importlib.util.find_spec("torchvision")
        folder = Path(spec.origin).parent  # type: ignore[union-attr, arg-type]
        if not hasattr(torch.ops.image, "decode_image"):
            for lib in sorted(folder.glob("image*.so")) + sorted(folder.glob("image*.pyd")):
                torch.ops.load_library(str(lib))
        op = torch.ops.image.decode_image
        probe = op(torch.tensor(list(_PROBE_PNG), dtype=torch.uint8), _UNCHANGED, True)
        if tuple(probe.shape) == (1, 1, 1) and int(probe) == 255:
            return lambda buf, mode: op(buf, mode, True)
    except Exception:  # another torchvision build or version: its public API below
        pass
    import warnings

    from torchvision.io import ImageReadMode, decode_image

    # torchvision 0.29 deprecates its decoders in favour of torchcodec, with a warning per call
    warnings.filterwarnings(
        "ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning
    )
    return lambda buf, mode: decode_image(buf, ImageReadMode(mode), apply_exif_orientation=True)


def _decode_torchvision(buf: torch.Tensor) -> torch.Tensor:
    import torch

    decode = _decoder()
    head = buf[:26].numpy().tobytes()
    # a palette PNG decodes UNCHANGED to its palette indices: ask for the colours
    palette = head[:8] == _PNG and len(head) > 25 and head[25] == 3
    img = decode(buf, _RGB if palette else _UNCHANGED)
    if img.shape[-3] == 4 and head[:2] == b"\xff\xd8":  # a CMYK JPEG comes back as CMYK
        img = decode(buf, _RGB)
    if img.ndim == 4:  # an animated GIF: its first frame
        img = img[0]
    if img.dtype != torch.uint8:  # 16-bit PNG: keep the high byte, as PIL's fallback does
        img = (img.to(torch.int32) >> 8).to(torch.uint8)
    return img


def _decode_pil(data: bytes) -> torch.Tensor:
    import io

    import numpy as np
    import torch
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        im.load()  # raises on truncated data
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith("I;16"):
            arr = (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
        elif im.mode in ("1", "L", "LA", "La", "I", "F"):
            arr = np.asarray(im.convert("L"))
        else:  # P, PA, RGBA, CMYK, YCbCr, LAB, HSV ...
            arr = np.asarray(im.convert("RGB"))
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _reason(exc: BaseException) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image torchvision or PIL can read (damaged or another format)"
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return line[:120]


def _decode_file(path: str) -> torch.Tensor:
    """One file as a (1 or 3, H, W) uint8 tensor: gray or RGB, alpha dropped, EXIF
    orientation applied. Raises on a file neither torchvision nor PIL can decode."""
    import torch

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise ValueError("empty file")
        buf = torch.empty(size, dtype=torch.uint8)
        f.readinto(buf.numpy())  # straight into the tensor the decoder reads
    try:
        img = _decode_torchvision(buf)
    except Exception:  # BMP, TIFF, PPM, or an old torchvision without GIF/WebP: PIL
        img = _decode_pil(buf.numpy().tobytes())
    channels = img.shape[0]
    if channels == 2:  # gray + alpha
        img = img[:1]
    elif channels == 4:  # RGBA
        img = img[:3]
    return img


def _to_channels(img: torch.Tensor, channels: int) -> torch.Tensor:
    """Gray -> RGB by repetition, RGB -> gray with ITU-R 601 weights (torchvision's)."""
    import torch

    if img.shape[0] == channels:
        return img
    if channels == 3:
        return img.expand(3, -1, -1)
    w = torch.tensor([0.2989, 0.587, 0.114]).view(3, 1, 1)
    return (img.float() * w).sum(0, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)


def _resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear with antialias on the uint8 tensor: the very kernel (and result, a test
    checks) of ``torchvision.transforms.v2.functional.resize(img, size, antialias=True)``,
    without importing torchvision."""
    if tuple(img.shape[-2:]) == size:
        return img
    import torch.nn.functional as F

    return F.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]


@dataclass
class _Image:
    img: torch.Tensor | None  # None: the file could not be decoded
    why: str  # ... and why not
    shape: tuple[int, int]  # (H, W) as decoded, before any resizing


def _decode_chunk(files: list[_File], size: tuple[int, int] | None, channels: int | None) -> list[_Image]:
    out: list[_Image] = []
    for f in files:
        try:
            img = _decode_file(f.path)
        except Exception as exc:  # whatever a damaged file makes a decoder raise
            out.append(_Image(None, _reason(exc), (0, 0)))
            continue
        shape = (img.shape[-2], img.shape[-1])
        # with a known size and mode, shrink now: a folder of photos never sits in memory
        if channels is not None:
            img = _to_channels(img, channels)
        if size is not None:
            img = _resize(img, size)
        out.append(_Image(img, "", shape))
    return out


def _in_chunks(fn, items: list, workers: int) -> list:
    """``fn`` over ``items`` in contiguous chunks, on ``workers`` threads, results in order."""
    if workers <= 1 or len(items) < 2:
        return fn(items)
    step = max(16, min(256, -(-len(items) // (workers * 8))))
    chunks = [items[i : i + step] for i in range(0, len(items), step)]
    with ThreadPoolExecutor(workers, thread_name_prefix="dltui-decode") as pool:
        return [r for part in pool.map(fn, chunks) for r in part]


def _decode_all(files: list[_File], size: tuple[int, int] | None, channels: int | None) -> tuple[list[_Image], int]:
    """Decoded images (None + reason where a file is bad) and the thread count used."""
    from dltui.config import usable_cores

    t0 = time.perf_counter()
    decoded = _decode_chunk(files[:PROBE_FILES], size, channels)
    per_file = (time.perf_counter() - t0) / max(1, len(decoded))
    workers = min(usable_cores(), 16) if per_file > PARALLEL_MIN_S else 1
    decoded += _in_chunks(lambda part: _decode_chunk(part, size, channels), files[PROBE_FILES:], workers)
    return decoded, workers


@dataclass
class _Decoded:
    x: torch.Tensor  # (N, C, H, W) uint8, the readable files in scan order
    y: torch.Tensor  # int64
    test: torch.Tensor  # bool: from the test folder
    size: tuple[int, int]
    mode: str  # gray | rgb
    size_given: bool
    mode_given: bool
    resized: int
    skipped: list[tuple[str, str]]  # (file, reason)


def _decode(root: Path, files: list[_File], size: tuple[int, int] | None, mode: str | None) -> _Decoded:
    import torch

    given_size = size
    channels = None if mode is None else (1 if mode == "gray" else 3)
    decoded, workers = _decode_all(files, size, channels)
    good = [(f, d.img) for f, d in zip(files, decoded, strict=True) if d.img is not None]
    skipped = [(f.name, d.why) for f, d in zip(files, decoded, strict=True) if d.img is None]
    if skipped and (not good or len(skipped) > MAX_BAD_FRACTION * len(files)):
        first, why = skipped[0]
        raise _fail(
            root,
            f"{len(skipped)} of {len(files)} images cannot be read (first: {first}: {why}); "
            f"more than {MAX_BAD_FRACTION:.0%} are bad, so this is not taken for a dataset",
        )
    shapes = Counter(d.shape for d in decoded if d.img is not None)
    if size is None:
        size = shapes.most_common(1)[0][0]  # ties: the first found, as files are sorted
    if channels is None:
        channels = 1 if all(img.shape[0] == 1 for _, img in good) else 3
    x = torch.empty((len(good), channels, *size), dtype=torch.uint8)

    def fill(part: list[tuple[int, torch.Tensor]]) -> list[None]:
        for i, img in part:
            x[i].copy_(_resize(img, size))  # (1, H, W) broadcasts into RGB rows
        return []

    _in_chunks(fill, [(i, img) for i, (_, img) in enumerate(good)], workers)
    resized = sum(n for shape, n in shapes.items() if shape != size)
    return _Decoded(
        x=x,
        y=torch.tensor([f.label for f, _ in good], dtype=torch.int64),
        test=torch.tensor([f.test for f, _ in good], dtype=torch.bool),
        size=size,
        mode="gray" if channels == 1 else "rgb",
        size_given=given_size is not None,
        mode_given=mode is not None,
        resized=resized,
        skipped=skipped,
    )


# --- cache -------------------------------------------------------------------------------


def _files_key(classes: list[str], files: list[_File]) -> str:
    h = hashlib.sha256(f"dltui imagefolder {READER_VERSION}\n{json.dumps(classes)}\n".encode())
    for f in files:
        h.update(f"{f.key}\t{f.label}\t{f.size}\t{f.mtime_ns}\n".encode())
    return h.hexdigest()


def _cache_name(root: Path, test: Path | None, local: bool) -> str:
    """One cache file per folder (and ``test`` folder): a changed folder replaces its file
    instead of piling up new ones. In ROOT's own cache folder the name does not depend on
    where ROOT is, so a moved folder keeps its cache."""
    if local:
        if test is None:
            return "images.pt"
        tag = _shown(test, root) if _shown(test, root) != str(test) else str(test.resolve())
        return f"images-{hashlib.sha256(tag.encode()).hexdigest()[:12]}.pt"
    ident = f"{root.resolve()}\n{test.resolve() if test else ''}"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", root.resolve().name)[:40] or "root"
    return f"{stem}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}.pt"


def _cache_candidates(root: Path, test: Path | None, cache_dir: Path | None) -> list[Path]:
    """Where the cache may be, in the order it is written: ROOT/.dltui-cache when ROOT is
    writable, else the user's cache folder."""
    if cache_dir is not None:
        return [cache_dir / _cache_name(root, test, local=False)]
    from dltui.config import default_data_dir

    return [
        root / CACHE_FOLDER / _cache_name(root, test, local=True),
        default_data_dir().parent / "folders" / _cache_name(root, test, local=False),
    ]


def _load_cache(path: Path, key: str, size: tuple[int, int] | None, mode: str | None) -> _Decoded | None:
    """The cached tensors if they are exactly what decoding now would give, else None
    (missing, unreadable, another file list, or another size or mode)."""
    import torch

    if not path.is_file():
        return None
    try:
        # mapped, not read: the split below copies what it needs, so a large cache is never
        # held twice in memory (os.replace by another process leaves this mapping intact)
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        meta = json.loads(blob["meta"])
        if meta["version"] != READER_VERSION or meta["key"] != key:
            return None
        # an inferred size/mode equals a requested one only when they agree; a requested one
        # never stands for an inferred one (it may have resized or converted files)
        if (tuple(meta["size"]) != size) if size is not None else meta["size_given"]:
            return None
        if (meta["mode"] != mode) if mode is not None else meta["mode_given"]:
            return None
        x, y, test = blob["x"], blob["y"], blob["test"]
        c = 1 if meta["mode"] == "gray" else 3
        n = len(y)
        if (
            x.dtype != torch.uint8
            or tuple(x.shape) != (n, c, *meta["size"])
            or test.shape != (n,)
            or y.dtype != torch.int64
        ):
            return None
        return _Decoded(
            x=x,
            y=y,
            test=test.bool(),
            size=tuple(meta["size"]),
            mode=meta["mode"],
            size_given=meta["size_given"],
            mode_given=meta["mode_given"],
            resized=int(meta["resized"]),
            skipped=[tuple(s) for s in meta["skipped"]],
        )
    except Exception:  # a damaged or foreign file is not an error: decode again
        return None


def _write_cache(paths: list[Path], key: str, d: _Decoded) -> tuple[Path | None, str]:
    """Write atomically to the first writable place; (path or None, why not)."""
    import torch

    meta = {
        "version": READER_VERSION,
        "key": key,
        "size": list(d.size),
        "mode": d.mode,
        "size_given": d.size_given,
        "mode_given": d.mode_given,
        "resized": d.resized,
        "skipped": [list(s) for s in d.skipped],
    }
    blob = {"x": d.x, "y": d.y, "test": d.test, "meta": json.dumps(meta)}
    why = ""
    for path in paths:
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.parent.name == CACHE_FOLDER and not (path.parent / ".gitignore").exists():
                (path.parent / ".gitignore").write_text("*\n")  # keep it out of the user's git
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                torch.save(blob, f)
            os.replace(tmp, path)
            return path, ""
        except OSError as exc:
            why = f"{path.parent}: {exc.strerror or exc}"
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    return None, why


# --- the reader --------------------------------------------------------------------------


def _mean_std(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``x * (1/255)``, from a histogram of the byte values:
    exact integer counts, so the same numbers whatever the chunking, and no float copy
    of the images (bincount took 15 ms for 8,000 MNIST images)."""
    import torch

    n, c = x.shape[:2]
    hist = torch.zeros(c, 256, dtype=torch.int64)
    step = max(1, (1 << 20) // max(1, x[0].numel()))
    for i in range(0, n, step):
        part = x[i : i + step]
        for ch in range(c):
            hist[ch] += torch.bincount(part[:, ch].reshape(-1), minlength=256)
    values = torch.arange(256, dtype=torch.int64)
    mean, std = [], []
    for h in hist:
        count, total, squares = int(h.sum()), int((h * values).sum()), int((h * values * values).sum())
        s = ((squares * count - total * total) / (count * count)) ** 0.5  # exact until this division
        mean.append(total / count / 255)
        # a constant channel has no spread to divide by: leave it unscaled
        std.append(s / 255 if s > 1e-6 else 1.0)
    return tuple(mean), tuple(std)


def _check_schema(schema: Any, root: Path) -> dict[str, Any]:
    try:
        ok = (
            schema.get("reader") == "imagefolder"
            and len(schema["image_size"]) == 2
            and all(isinstance(v, int) and 0 < v <= 4096 for v in schema["image_size"])
            and all(isinstance(v, (int, float)) and v > 0 for v in schema["std"])
            and all(isinstance(v, (int, float)) for v in schema["mean"])
            and schema["mode"] in ("gray", "rgb")
            and len(schema["classes"]) >= 2
            and all(isinstance(c, str) for c in schema["classes"])
            and len(schema["mean"]) == len(schema["std"]) == (1 if schema["mode"] == "gray" else 3)
        )
    except (AttributeError, KeyError, TypeError):
        ok = False
    if not ok:
        raise _fail(root, "the saved schema is not an image folder's (damaged checkpoint or another reader's)")
    return schema


def _count_by_class(y: torch.Tensor, n_classes: int) -> list[int]:
    import torch

    return torch.bincount(y, minlength=n_classes).tolist()


def open_image_folder(
    root: Path,
    *,
    image_size: int | None = None,
    test: Path | None = None,
    seed: int = 0,
    schema: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
) -> OwnData:
    """Read a folder of class subfolders of images (see the module docstring).

    ``image_size``: resize every image to this square; None keeps the most common size
    and resizes the others. ``schema`` (from an earlier call): use its size, mode, classes
    and normalisation instead of inferring them, so a resumed or evaluated run sees
    exactly the tensors it was trained on. Raises DataError in one line naming the folder.
    """
    from dltui.data import split_indices

    root = Path(os.path.expanduser(root))
    test = Path(os.path.expanduser(test)) if test is not None else None
    if schema is not None:
        schema = _check_schema(schema, root)
    train_dir, test_dir = _layout(root, test)
    fixed_classes = list(schema["classes"]) if schema else None
    classes, files, notes = _scan(root, train_dir, test_dir, fixed_classes)
    if not files:
        raise _fail(root, f"holds no images of the classes {', '.join(classes)}")
    if schema:
        size, mode = tuple(schema["image_size"]), schema["mode"]
    elif image_size is not None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or not 0 < image_size <= 4096:
            raise _fail(root, f"image size {image_size!r} must be a whole number of pixels from 1 to 4096")
        size, mode = (image_size, image_size), None
    else:
        size, mode = None, None

    key = _files_key(classes, files)
    places = _cache_candidates(root, test, cache_dir)
    t0 = time.perf_counter()
    cache_state = "loaded"
    cache_path = None
    d = None
    for place in places:
        d = _load_cache(place, key, size, mode)
        if d is not None:
            cache_path = place
            break
    if d is None:
        d = _decode(root, files, size, mode)
        cache_path, why = _write_cache(places, key, d)
        cache_state = "written" if cache_path else f"not written ({why})"
        if cache_path is None:
            notes.append(f"could not cache the decoded images: {why}")
    seconds = time.perf_counter() - t0

    if test_dir is not None:
        train_idx = (~d.test).nonzero().flatten()
        test_idx = d.test.nonzero().flatten()
        split = f"{train_dir.name}/ and {test_dir.name}/ folders" if test is None else f"test folder {test_dir}"
        split_info: dict[str, Any] = {"method": "folders", "train": str(train_dir), "test": str(test_dir)}
    else:
        train_idx, test_idx = split_indices(len(d.y), seed, TEST_FRACTION)
        split = f"80/20 by --seed {seed}"
        split_info = {"method": "random", "seed": seed, "test_fraction": TEST_FRACTION}
    if len(train_idx) == 0 or len(test_idx) == 0:
        which = "training" if len(train_idx) == 0 else "test"
        raise _fail(root, f"the {which} split holds no readable images ({len(d.y)} in all); add images")
    x_train, y_train = d.x.index_select(0, train_idx), d.y.index_select(0, train_idx)
    x_test, y_test = d.x.index_select(0, test_idx), d.y.index_select(0, test_idx)

    if schema:
        mean, std = tuple(schema["mean"]), tuple(schema["std"])
    else:
        mean, std = _mean_std(x_train)

    if d.resized:
        notes.append(f"resized {d.resized} image(s) to {d.size[1]}x{d.size[0]}")
    if d.skipped:
        first, why = d.skipped[0]
        notes.append(f"skipped {len(d.skipped)} unreadable image(s) (first: {first}: {why})")

    per_train = _count_by_class(y_train, len(classes))
    per_test = _count_by_class(y_test, len(classes))
    c = 1 if d.mode == "gray" else 3
    h, w = d.size
    new_schema = {
        "reader": "imagefolder",
        "version": READER_VERSION,
        "root": str(root),
        "image_size": [h, w],
        "mode": d.mode,
        "classes": list(classes),
        "mean": list(mean),
        "std": list(std),
        "split": split_info,
        "counts": {
            "train": len(y_train),
            "test": len(y_test),
            "per_class_train": dict(zip(classes, per_train, strict=True)),
        },
        "skipped": {"count": len(d.skipped), "first": d.skipped[0][0] if d.skipped else None},
        "resized": d.resized,
    }
    shown = ", ".join(
        f"{name} ({a:,}/{b:,})" for name, a, b in list(zip(classes, per_train, per_test, strict=True))[:12]
    )
    if len(classes) > 12:
        shown += f", … {len(classes) - 12} more"
    report = [
        ("folder", str(root)),
        ("images", f"train {len(y_train):,} · test {len(y_test):,}"),
        ("classes", f"{len(classes)}: {shown} (train/test)"),
        ("image size", f"{w}x{h} {d.mode}" + (f" ({d.resized:,} resized)" if d.resized else "")),
        (
            "skipped",
            f"{len(d.skipped)} unreadable" + (f" (first: {d.skipped[0][0]}: {d.skipped[0][1]})" if d.skipped else ""),
        ),
        ("split", split),
        ("input shape", f"{c}x{h}x{w}"),
        ("cache", f"{cache_path or places[0]} ({cache_state}, {seconds:.2f} s)"),
    ]
    return OwnData(
        task="classification",
        kind="image",
        input_shape=(c, h, w),
        classes=tuple(classes),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        schema=new_schema,
        report=report,
        notes=notes,
        scale=1 / 255,
        mean=tuple(mean),
        std=tuple(std),
        split=split,
    )
