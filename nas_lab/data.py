"""Datasets for the course: train, validation and test splits as in-memory tensors.

The default is scikit-learn's bundled handwritten digits (8x8 grey images, 1,797 of them; the
UCI "Optical Recognition of Handwritten Digits" set, Alpaydin & Kaynak, 1998). It ships with
scikit-learn, so the default path never downloads anything. FashionMNIST (Xiao, Rasul & Vollgraf,
2017) and CIFAR-10 (Krizhevsky, 2009) come through torchvision for learners who are online.

Every split is stratified (each part keeps the class proportions) and seeded: the same seed gives
the same split, a different seed a different one. NAS compares architectures on the validation
split and reports the test split once, at the end; keeping the three apart is what makes the
comparison honest.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

DATASETS = ("digits", "fashion_mnist", "cifar10")
NUM_CLASSES = {"digits": 10, "fashion_mnist": 10, "cifar10": 10}

# Digits: 60/20/20 of the whole set. torchvision sets: their official test set, and 10% of the
# official training set held out for validation.
DIGITS_HOLDOUT = (0.2, 0.2)
TORCHVISION_VAL_FRACTION = 0.1

# What torchvision leaves on disk, relative to the data root.
_FASHION_FILES = tuple(
    f"FashionMNIST/raw/{part}-{kind}-ubyte"
    for part in ("train", "t10k")
    for kind in ("images-idx3", "labels-idx1")
)
_CIFAR_FILES = tuple(
    f"cifar-10-batches-py/{name}"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
)


@dataclass(frozen=True)
class Splits:
    """A dataset cut into train, validation and test parts.

    Images are float32 tensors of shape (N, C, H, W) scaled to [0, 1]; labels are int64.
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W), without the batch dimension
    name: str

    def __repr__(self) -> str:
        sizes = f"train {len(self.train)}, val {len(self.val)}, test {len(self.test)}"
        return f"Splits({self.name}: {sizes}; input {self.input_shape}; {self.num_classes} classes)"


def load(
    name: str = "digits",
    seed: int = 0,
    root: str | os.PathLike | None = None,
    download: bool = False,
    train_fraction: float = 1.0,
    resolution: int | None = None,
) -> Splits:
    """Load ``name`` (one of ``DATASETS``) as seeded, stratified train/val/test splits.

    - ``digits`` (default, offline): 1,797 images of shape (1, 8, 8), split 60/20/20 class by
      class: 1,079 train, 359 validation, 359 test images (the same sizes for every seed).
    - ``fashion_mnist`` (1, 28, 28) and ``cifar10`` (3, 32, 32): read through torchvision from
      ``root`` (default: env ``NAS_LAB_DATA``, else ``~/.cache/nas_lab``). The official test set
      is the test split; 10% of the official training set, per class, is the validation split.
      Files are fetched only with ``download=True``.

    ``train_fraction`` keeps a seeded, stratified subset of the training split (at least one image
    per class), for cheap low-fidelity estimates; validation and test stay whole and do not
    depend on it. ``resolution`` resizes every image to ``resolution x resolution`` with bilinear
    interpolation, for the resolution axis of compound scaling (Tan & Le, "EfficientNet",
    ICML 2019).
    """
    name = _canonical_name(name)
    _check_arguments(seed, train_fraction, resolution)
    if name == "digits":
        images, labels = _digits_arrays()
        rest, val, test = stratified_split(labels, DIGITS_HOLDOUT, seed)
        parts = {"train": rest, "val": val, "test": test}
        arrays = {key: (images[idx], labels[idx]) for key, idx in parts.items()}
    else:
        train_x, train_y, test_x, test_y = _torchvision_arrays(name, str(data_root(root)), download)
        rest, val = stratified_split(train_y, (TORCHVISION_VAL_FRACTION,), seed)
        arrays = {
            "train": (train_x[rest], train_y[rest]),
            "val": (train_x[val], train_y[val]),
            "test": (test_x, test_y),
        }
    if train_fraction < 1.0:
        x, y = arrays["train"]
        keep = stratified_subset(y, train_fraction, seed)
        arrays["train"] = (x[keep], y[keep])
    datasets = {key: _to_dataset(x, y, resolution) for key, (x, y) in arrays.items()}
    return Splits(
        **datasets,
        num_classes=NUM_CLASSES[name],
        input_shape=tuple(datasets["test"].tensors[0].shape[1:]),
        name=name,
    )


def loader(
    dataset: Dataset, batch_size: int = 64, shuffle: bool = True, seed: int = 0
) -> DataLoader:
    """A DataLoader whose shuffling is fixed by ``seed`` (its own generator, not torch's global
    one) and that runs in the main process (``num_workers=0``: the datasets are in memory, and
    worker processes would cost more than they save)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0
    )


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where torchvision datasets live: ``root``, else env ``NAS_LAB_DATA``, else
    ``~/.cache/nas_lab``."""
    if root is None:
        root = os.environ.get("NAS_LAB_DATA") or Path.home() / ".cache" / "nas_lab"
    return Path(root).expanduser()


# --- splitting -------------------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, fractions: Sequence[float], seed: int
) -> tuple[np.ndarray, ...]:
    """Split indices class by class: part k takes ``round(fractions[k] * n_c)`` images of each
    class c (half rounds up); the rest comes first. Returns ``(rest, part_1, ..., part_K)``,
    each sorted, so the split depends only on ``labels`` and ``seed``."""
    rng = np.random.default_rng(seed)
    chunks: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        counts = [_round_half_up(f * len(idx)) for f in fractions]
        *parts, rest = np.split(idx, np.cumsum(counts))
        for chunk, piece in zip(chunks, [rest, *parts], strict=True):
            chunk.append(piece)
    return tuple(np.sort(np.concatenate(chunk)) for chunk in chunks)


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset holding ``fraction`` of every class (at least one
    image per class, so no class disappears from a low-fidelity run)."""
    rng = np.random.default_rng((seed, 1))  # its own stream: independent of the split's
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(
            rng.choice(idx, size=max(1, _round_half_up(fraction * len(idx))), replace=False)
        )
    return np.sort(np.concatenate(keep))


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


# --- reading ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The digits as float32 (N, 1, 8, 8) in [0, 1] (pixels are counts 0..16) and int64 labels.
    Cached: loading takes ~0.1 s, and a benchmark loads it thousands of times."""
    from sklearn.datasets import load_digits  # lazy: sklearn is slow to import

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    images.flags.writeable = False  # a cached array must not be changed in place
    return images, digits.target.astype(np.int64)


@functools.lru_cache(maxsize=2)
def _torchvision_arrays(
    name: str, root: str, download: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) as uint8 (N, C, H, W) images and int64 labels."""
    if not download:
        _require_files(name, Path(root))
    parts = []
    for train in (True, False):
        if name == "fashion_mnist":
            from torchvision.datasets import FashionMNIST

            ds = FashionMNIST(root, train=train, download=download)
            x = ds.data.numpy()[:, None]  # (N, 28, 28) -> (N, 1, 28, 28)
        else:
            ds = _cifar10_class(download)(root, train=train, download=download)
            x = ds.data.transpose(0, 3, 1, 2)  # torchvision keeps CIFAR as (N, H, W, C)
        parts += [np.ascontiguousarray(x), np.asarray(ds.targets, dtype=np.int64)]
    return tuple(parts)


def _cifar10_class(download: bool) -> type:
    """torchvision's CIFAR10, or, when not downloading, a subclass that trusts files on disk.

    torchvision checks the md5 sum of every batch file each time it loads CIFAR-10, and refuses
    any other content. After a fresh download that check is worth its time, so we keep it. For
    files already on disk we only check that they exist: this spares hashing 170 MB on every
    load, and lets the tests read tiny files written in the same format.
    """
    from torchvision.datasets import CIFAR10

    if download:
        return CIFAR10

    class CIFAR10OnDisk(CIFAR10):
        meta = {**CIFAR10.meta, "md5": None}  # md5=None: torchvision checks existence only

        def _check_integrity(self) -> bool:
            files = [name for name, _ in self.train_list + self.test_list]
            return all(os.path.isfile(os.path.join(self.root, self.base_folder, f)) for f in files)

    return CIFAR10OnDisk


def _require_files(name: str, root: Path) -> None:
    """Raise a FileNotFoundError naming the missing files and the two ways to fix it."""
    expected = _FASHION_FILES if name == "fashion_mnist" else _CIFAR_FILES
    missing = [f for f in expected if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{name} is not on disk: looked in {root} and did not find {', '.join(missing)}. "
            f"To get it, run nas_lab.data.load({name!r}, download=True) once while online "
            f"(it saves to {root}), or point root= or the NAS_LAB_DATA environment variable "
            "at a folder that already holds it. The default dataset, 'digits', needs no download."
        )


def _to_dataset(images: np.ndarray, labels: np.ndarray, resolution: int | None) -> TensorDataset:
    """Copy into tensors: float32 in [0, 1], resized when asked."""
    x = torch.tensor(images, dtype=torch.float32)
    if images.dtype == np.uint8:
        x /= 255.0
    if resolution is not None and resolution != x.shape[-1]:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return TensorDataset(x, torch.tensor(labels, dtype=torch.int64))


# --- argument checks -------------------------------------------------------------------------


def _canonical_name(name: str) -> str:
    """Accept 'digits', 'fashion_mnist', 'FashionMNIST', 'fashion-mnist', 'CIFAR-10', ..."""
    key = str(name).lower().replace("-", "").replace("_", "")
    for known in DATASETS:
        if key == known.replace("_", ""):
            return known
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def _check_arguments(seed: int, train_fraction: float, resolution: int | None) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, e.g. seed=0; got {seed!r}")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(
            f"train_fraction must be in (0, 1], e.g. 0.25 for a quarter; got {train_fraction!r}"
        )
    if resolution is not None and (not isinstance(resolution, int | np.integer) or resolution < 1):
        raise ValueError(f"resolution must be a positive integer, e.g. 16; got {resolution!r}")
