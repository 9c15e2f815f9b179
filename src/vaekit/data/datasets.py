"""Datasets by name or path: ``vk.datasets.load("mnist", split="test")``.

Named datasets:

* ``digits``, ``iris``: scikit-learn's embedded copies (no download); pixels/features as
  float32, digits scaled to ``[0, 1]``.
* ``mnist``, ``fashion-mnist``: the IDX ``.gz`` files, pixels in ``[0, 1]``, flattened to
  784 features (``meta["image_shape"] == (28, 28)``).
* ``binarized-mnist``: the fixed binarization of Larochelle & Murray (2011), splits
  ``train`` (50,000), ``valid`` (10,000), ``test`` (10,000), stored as packed ``.npz``.
  The test split is MNIST's test set sorted by class, so it carries MNIST's labels;
  train and valid are shuffled and unlabelled.

Files are looked up in ``$VAEKIT_DATA_DIR/<name>/``, then in the cache
(``$VAEKIT_CACHE_DIR`` or ``~/.cache/vaekit``), else downloaded from a public mirror
(``$VAEKIT_DATA_URL`` or ``base_url=`` overrides it), md5-checked and written atomically.

Paths: ODDS/ADBench ``.npz`` (keys ``X``, ``y``) and ``.mat``, ``.npy`` (memory-mapped),
CSV and Parquet (numeric columns; ``label_column=``), folders of PNG/JPEG images
(``size=``, ``mode=``) or of WAV files (``frame_length=``, ``hop=``). Data without an
official split are split deterministically: ``train`` 80 % / ``test`` 20 % (``all``
for everything). Folders and ``.npy`` files give a :class:`vaekit.Source`
that reads examples from disk on demand.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._validate import positive_int
from ..training import ArrayLike, ArraySource, Source
from ._fetch import ChecksumError, base_urls, cache_dir, fetch, find
from ._files import read_idx, read_mat, read_npz, read_table, xy_from_arrays
from ._folders import AudioFolder, ImageFolder, write_wav

__all__ = [
    "AudioFolder",
    "ChecksumError",
    "Dataset",
    "ImageFolder",
    "NAMES",
    "Subset",
    "cache_dir",
    "load",
    "materialize",
    "n_examples",
    "read_idx",
    "splits",
    "write_wav",
]


class Dataset(NamedTuple):
    """``x``: float32 ``[n, *shape]`` array, or a :class:`Source` that reads from disk on
    demand and behaves like one (``x.shape``, ``x[i]``, ``x[a:b]``, ``np.asarray(x)``);
    ``y``: labels ``[n]`` or None."""

    x: Any
    y: np.ndarray | None
    name: str
    meta: dict


class Subset(ArrayLike):
    """A view of another :class:`Source`: its examples ``indices`` (all of them with
    ``None``), passed through ``transform`` when read (e.g. a fitted preprocessing)."""

    def __init__(
        self,
        source: Source,
        indices: np.ndarray | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.source, self.transform = source, transform
        self.indices = None if indices is None else np.asarray(indices, np.int64)

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.source.example_shape)

    def __len__(self) -> int:
        return len(self.source) if self.indices is None else len(self.indices)

    def read(self, indices: np.ndarray) -> np.ndarray:
        rows = np.asarray(indices) if self.indices is None else self.indices[np.asarray(indices)]
        x = self.source.read(rows)
        return x if self.transform is None else self.transform(x)


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
_MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "binarized-mnist": ["http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"],
}
_SPLITS = {
    "digits": ("train", "test", "all"),
    "iris": ("train", "test", "all"),
    "mnist": ("train", "test"),
    "fashion-mnist": ("train", "test"),
    "binarized-mnist": ("train", "valid", "test"),
}
#: Names :func:`load` knows.
NAMES = tuple(_SPLITS)
TEST_FRACTION = 0.2


def load(name_or_path: str | os.PathLike, split: str = "train", *, limit: int | None = None, **options) -> Dataset:
    """Load a dataset by name (see :data:`NAMES`) or path.

    :param split: ``"train"``, ``"test"``, ``"valid"`` (binarized-mnist) or ``"all"``.
    :param limit: keep only the first ``limit`` examples of the split (quick runs).
    :param options: ``base_url``, ``download`` (named sets); ``label_column`` (tables);
        ``size``, ``mode``, ``flatten`` (image folders); ``frame_length``, ``hop`` (audio).
    """
    key = str(name_or_path)
    if key.lower() in _SPLITS:
        key = key.lower()
        _check_split(key, split, _SPLITS[key])
        ds = _LOADERS[key](split, **options)
    else:
        path = Path(key).expanduser()
        if not path.exists():
            if os.sep not in key and "." not in key:
                raise ValueError(
                    f"Unknown dataset {key!r}. Known names: {', '.join(NAMES)}; or pass the path "
                    "of a .npz/.mat/.npy/.csv/.parquet file or an image/audio folder."
                )
            raise FileNotFoundError(
                f"Data path {path} does not exist. Check the path (or use a known name: {', '.join(NAMES)})."
            )
        _check_split(str(path), split, ("train", "test", "all"))
        ds = _split(_load_path(path, **options), split)
    if limit is not None:
        limit = positive_int(limit, "limit")
        ds = _take(ds, np.arange(min(limit, _len(ds.x))))
    return ds


def splits(name: str) -> tuple[str, ...]:
    """The splits of a named dataset, or of any file or folder (``train``/``test``/``all``)."""
    return _SPLITS.get(str(name).lower(), ("train", "test", "all"))


def n_examples(x) -> int:
    """Number of examples of an array or a :class:`Source`."""
    return _len(x)


def _check_split(name: str, split: str, valid: tuple[str, ...]) -> None:
    if split not in valid:
        raise ValueError(f"{name} has no split {split!r}. Valid splits: {', '.join(valid)}.")


def _len(x) -> int:
    return len(x) if isinstance(x, Source) else int(x.shape[0])


def _take(ds: Dataset, idx: np.ndarray) -> Dataset:
    x = Subset(ds.x, idx) if isinstance(ds.x, Source) and not isinstance(ds.x, np.ndarray) else ds.x[idx]
    y = None if ds.y is None else ds.y[idx]
    return ds._replace(x=x, y=y)


def _split(ds: Dataset, split: str) -> Dataset:
    """Deterministic 80/20 train/test split (a fixed permutation) for data without one."""
    meta = {**ds.meta, "split": split}
    if split == "all":
        return ds._replace(meta=meta)
    n = _len(ds.x)
    perm = np.random.default_rng(0).permutation(n)
    n_test = int(round(TEST_FRACTION * n))
    idx = np.sort(perm[:n_test] if split == "test" else perm[n_test:])
    return _take(ds, idx)._replace(meta=meta)


def _digits(split: str) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    ds = Dataset(
        (d.data / 16.0).astype(np.float32), d.target, "digits", {"image_shape": (8, 8), "classes": list(range(10))}
    )
    return _split(ds, split)


def _iris(split: str) -> Dataset:
    from sklearn.datasets import load_iris

    d = load_iris()
    meta = {"features": list(d.feature_names), "classes": list(d.target_names)}
    return _split(Dataset(d.data.astype(np.float32), d.target, "iris", meta), split)


def _idx_loader(name: str):
    def load_idx(split: str, base_url: str | None = None, download: bool = True) -> Dataset:
        urls = base_urls(_MIRRORS[name], base_url, name)
        img_file, lab_file = _IDX_FILES[split]
        paths = [fetch(name, f, urls, _MD5[name][f], download=download) for f in (img_file, lab_file)]
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{name}: {paths[0].name} {images.shape} and {paths[1].name} {labels.shape} do not "
                "form an image set with one label per image; the files are corrupt or swapped."
            )
        x = images.reshape(len(images), -1).astype(np.float32)
        x /= 255.0  # in place: the same values without a second 188 MB array for MNIST
        meta = {
            "image_shape": tuple(images.shape[1:]),
            "classes": list(range(10)),
            "split": split,
            "files": [str(p) for p in paths],
        }
        return Dataset(x, labels.astype(np.int64), name, meta)

    return load_idx


def _binarized_mnist(split: str, base_url: str | None = None, download: bool = True) -> Dataset:
    name = "binarized-mnist"
    fname = f"binarized_mnist_{split}.npz"
    path = find(name, fname)
    if path is None:
        if not download:
            raise FileNotFoundError(f"{name}: {fname} not found in $VAEKIT_DATA_DIR/{name}/ or {cache_dir() / name}.")
        path = _convert_amat(name, split, base_urls(_MIRRORS[name], base_url, name))
    d = read_npz(path)
    if "bits" not in d or "shape" not in d:
        raise ValueError(f"{path} lacks the keys 'bits' and 'shape' of the packed binarized-mnist layout.")
    n, dim = (int(v) for v in d["shape"])
    if d["bits"].shape != (n, (dim + 7) // 8):
        raise ValueError(f"{path}: packed bits {d['bits'].shape} do not match shape {(n, dim)}; the file is corrupt.")
    x = np.unpackbits(d["bits"], axis=1, count=dim).astype(np.float32)
    meta = {"image_shape": (28, 28), "split": split, "files": [str(path)]}
    y = None
    if split == "test" and x.shape == (10000, 784):
        # The test split is MNIST's test set in stable label order (row i is the binarized
        # t10k image argsort(labels, kind="stable")[i]; tests/test_report_truth.py checks
        # this against the MNIST files), so its labels are known. Train/valid are shuffled.
        y = np.repeat(np.arange(10), MNIST_TEST_CLASS_COUNTS)
        meta["classes"] = list(range(10))
        meta["labels"] = "MNIST test labels (the split is sorted by class)"
    return Dataset(x, y, name, meta)


#: images per class in MNIST's test set (t10k-labels), digits 0..9
MNIST_TEST_CLASS_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)


def _convert_amat(name: str, split: str, urls: list[str]) -> Path:
    """Download the original ``.amat`` text file and store it in the packed ``.npz`` layout."""
    amat = fetch(name, f"binarized_mnist_{split}.amat", urls, None)
    try:
        x = np.loadtxt(amat, dtype=np.uint8)
    except ValueError as e:
        amat.unlink()
        raise ValueError(
            f"{name}: the downloaded {amat.name} is not a 0/1 text matrix ({e}); it was removed."
        ) from None
    if x.ndim != 2 or x.shape[1] != 784 or x.max() > 1:
        amat.unlink()
        raise ValueError(f"{name}: {amat.name} has shape {x.shape} (expected [n, 784] of 0/1); it was removed.")
    target = cache_dir() / name / f"binarized_mnist_{split}.npz"
    tmp = target.with_name(f".{target.name}.part")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, bits=np.packbits(x, axis=1), shape=np.array(x.shape, np.int64))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    amat.unlink()
    return target


_LOADERS = {
    "digits": _digits,
    "iris": _iris,
    "mnist": _idx_loader("mnist"),
    "fashion-mnist": _idx_loader("fashion-mnist"),
    "binarized-mnist": _binarized_mnist,
}


def _load_path(path: Path, label_column: str | None = None, **options) -> Dataset:
    name = path.stem
    if path.is_dir():
        has_wav = next((True for p in path.rglob("*.wav")), False)
        src = AudioFolder(path, **options) if has_wav else ImageFolder(path, **options)
        meta = {"classes": src.classes, "path": str(path)}
        if isinstance(src, ImageFolder):
            meta["image_shape"] = src.image_shape
        else:
            meta.update(audio=True, sample_rate=src.sample_rate)
        return Dataset(src, src.labels, name, meta)
    if options:
        raise ValueError(f"Options {sorted(options)} do not apply to {path.suffix} files.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        x, y = xy_from_arrays(read_npz(path), path)
    elif suffix == ".mat":
        x, y = xy_from_arrays(read_mat(path), path)
    elif suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{path} is not a readable .npy array ({e}); it is truncated or corrupt.") from None
        if arr.dtype.kind not in "biuf" or arr.ndim < 2:
            raise ValueError(f"{path}: expected a numeric array [n, ...], got dtype {arr.dtype} shape {arr.shape}.")
        return Dataset(ArraySource(arr), None, name, {"path": str(path)})
    elif suffix in (".csv", ".txt", ".parquet", ".pq"):
        x, y, features = read_table(path, label_column)
        return Dataset(x, y, name, {"path": str(path), "features": features})
    else:
        raise ValueError(
            f"Unsupported data file {path.name}. Use .npz/.mat (ODDS/ADBench), .npy, .csv, .parquet, "
            "or a folder of images or WAV files."
        )
    return Dataset(x, y, name, {"path": str(path)})


def materialize(x: Any, max_bytes: int = 4 << 30) -> np.ndarray:
    """An in-memory float32 array of ``x`` (a Source is read whole if under ``max_bytes``)."""
    if isinstance(x, Source) and not isinstance(x, np.ndarray):
        nbytes = len(x) * int(np.prod(x.example_shape)) * 4
        if nbytes > max_bytes:
            raise ValueError(
                f"The data ({nbytes / 2**30:.1f} GiB) do not fit the in-memory limit; "
                "train on the Source with vk.fit instead."
            )
        return x.read(np.arange(len(x)))
    return np.asarray(x, np.float32)
