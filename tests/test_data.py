"""nas_lab.data: the digits splits, and the torchvision path on tiny files in the real formats."""

from __future__ import annotations

import io
import pickle
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nas_lab import data

# --- digits ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> data.Splits:
    return data.load()


def test_digits_sizes_shapes_and_types(digits: data.Splits) -> None:
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1079, 359, 359)
    assert digits.num_classes == 10 and digits.input_shape == (1, 8, 8)
    assert digits.name == "digits"
    for part in (digits.train, digits.val, digits.test):
        x, y = part.tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and len(x) == len(y)
    x = torch.cat([p.tensors[0] for p in (digits.train, digits.val, digits.test)])
    assert x.min() == 0.0 and x.max() == 1.0  # 0..16 counts scaled to [0, 1]
    assert "train 1079, val 359, test 359" in repr(digits)


def test_digits_split_is_stratified(digits: data.Splits) -> None:
    totals = torch.bincount(
        torch.cat([p.tensors[1] for p in (digits.train, digits.val, digits.test)])
    )
    for part, fraction in ((digits.val, 0.2), (digits.test, 0.2), (digits.train, 0.6)):
        counts = torch.bincount(part.tensors[1], minlength=10)
        assert torch.all((counts - fraction * totals).abs() <= 1), counts


def test_stratified_split_is_a_partition() -> None:
    labels = np.repeat(np.arange(3), [10, 20, 31])
    rest, val, test = data.stratified_split(labels, (0.2, 0.1), seed=3)
    together = np.concatenate([rest, val, test])
    assert sorted(together) == list(range(len(labels)))  # disjoint, and nothing lost
    assert np.bincount(labels[val]).tolist() == [2, 4, 6]  # 6.2 -> 6
    assert np.bincount(labels[test]).tolist() == [1, 2, 3]  # 3.1 -> 3, 1.0 -> 1


def test_same_seed_same_split_other_seed_other_split(digits: data.Splits) -> None:
    again, other = data.load(seed=0), data.load(seed=1)
    for a, b in zip(
        digits.train.tensors + digits.test.tensors,
        again.train.tensors + again.test.tensors,
        strict=True,
    ):
        assert torch.equal(a, b)
    assert len(other.train) == len(digits.train)  # sizes do not depend on the seed
    assert not torch.equal(digits.train.tensors[1], other.train.tensors[1])


def test_loaded_tensors_do_not_share_the_cache(digits: data.Splits) -> None:
    digits_copy = data.load()
    digits_copy.train.tensors[0].fill_(7.0)
    assert data.load().train.tensors[0].max() == 1.0


def test_train_fraction_is_a_stratified_subset(digits: data.Splits) -> None:
    small = data.load(train_fraction=0.25)
    assert len(small.train) == pytest.approx(0.25 * len(digits.train), abs=10)
    assert torch.bincount(small.train.tensors[1], minlength=10).min() >= 25
    full_rows = {row.numpy().tobytes() for row in digits.train.tensors[0]}
    assert all(row.numpy().tobytes() in full_rows for row in small.train.tensors[0])
    assert torch.equal(small.val.tensors[0], digits.val.tensors[0])  # val and test untouched
    assert torch.equal(small.test.tensors[0], digits.test.tensors[0])
    tiny = data.load(train_fraction=0.001)
    assert torch.bincount(tiny.train.tensors[1]).tolist() == [1] * 10  # every class kept


def test_resolution_upsamples_bilinearly(digits: data.Splits) -> None:
    big = data.load(resolution=16)
    assert big.input_shape == (1, 16, 16) and big.train.tensors[0].shape == (1079, 1, 16, 16)
    x = big.train.tensors[0]
    assert 0.0 <= x.min() and x.max() <= 1.0
    # Bilinear, half-pixel centres: output pixel (1, 1) sits at source (0.25, 0.25), so it
    # weighs the source's top-left 2x2 block by (3/4, 1/4) along each axis.
    src = digits.train.tensors[0][:, 0]
    w = torch.tensor([0.75, 0.25])
    expected = torch.einsum("i,nij,j->n", w, src[:, :2, :2], w)
    assert torch.allclose(x[:, 0, 1, 1], expected, atol=1e-6)
    assert torch.equal(data.load(resolution=8).train.tensors[0], digits.train.tensors[0])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"name": "imagenet"}, ["unknown dataset 'imagenet'", "digits, fashion_mnist, cifar10"]),
        ({"train_fraction": 0.0}, ["train_fraction must be in (0, 1]"]),
        ({"train_fraction": 1.5}, ["train_fraction"]),
        ({"resolution": 0}, ["resolution must be a positive integer"]),
        ({"seed": -1}, ["seed must be a non-negative integer"]),
        ({"seed": 0.5}, ["seed"]),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        data.load(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_loader_is_seeded(digits: data.Splits) -> None:
    def first_labels(seed: int) -> torch.Tensor:
        return next(iter(data.loader(digits.train, batch_size=32, shuffle=True, seed=seed)))[1]

    assert torch.equal(first_labels(0), first_labels(0))
    assert not torch.equal(first_labels(0), first_labels(1))
    unshuffled = next(iter(data.loader(digits.train, batch_size=32, shuffle=False)))[1]
    assert torch.equal(unshuffled, digits.train.tensors[1][:32])
    assert data.loader(digits.train).num_workers == 0


def test_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NAS_LAB_DATA", raising=False)
    assert data.data_root() == tmp_path / ".cache" / "nas_lab"
    monkeypatch.setenv("NAS_LAB_DATA", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"


# --- torchvision datasets on tiny files --------------------------------------------------------


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def fake_images(n: int, channels: int, size: int) -> np.ndarray:
    """Image i is filled with the value i (so it can be told apart after a split) and carries
    two markers that reveal a transposed or channel-swapped reading."""
    images = np.repeat(np.arange(n, dtype=np.uint8), channels * size * size)
    images = images.reshape(n, channels, size, size)
    images[:, 0, 0, 1] = 250  # first channel, row 0, column 1
    images[:, -1, 1, 0] = 251  # last channel, row 1, column 0
    return images


def write_idx(path: Path, array: np.ndarray) -> None:
    """The MNIST idx format: big-endian magic (2051 images, 2049 labels), sizes, raw uint8."""
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist(root: Path, n_train: int = 100, n_test: int = 20) -> None:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{part}-images-idx3-ubyte", fake_images(n, 1, 28)[:, 0])
        write_idx(raw / f"{part}-labels-idx1-ubyte", np.arange(n) % 10)


class Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 strings, as the CIFAR-10 files were written (by Python 2).
    Read back with ``encoding="bytes"`` they give the b"data" keys that the CIFAR page
    documents; read with ``encoding="latin1"`` (as torchvision does) they give str keys."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def write_python2_pickle(path: Path, obj: dict) -> None:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 20) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = fake_images(5 * per_batch, 3, 32).reshape(-1, 3072)  # rows: R, G, B planes
    labels = np.arange(5 * per_batch) % 10
    for b in range(5):
        rows = slice(b * per_batch, (b + 1) * per_batch)
        batch = {b"data": train[rows], b"labels": labels[rows].tolist()}
        write_python2_pickle(folder / f"data_batch_{b + 1}", batch)
    test = {b"data": fake_images(n_test, 3, 32).reshape(-1, 3072), b"labels": [0] * n_test}
    write_python2_pickle(folder / "test_batch", test)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    write_python2_pickle(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})


def test_python2_pickles_read_back_as_documented(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    raw = (tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    assert set(pickle.loads(raw, encoding="bytes")) == {b"data", b"labels"}
    assert pickle.loads(raw, encoding="latin1")["data"].shape == (20, 3072)


def image_ids(x: torch.Tensor) -> list[int]:
    """Recover each fake image's index from a pixel away from the markers."""
    return (x[:, 0, 5, 5] * 255).round().long().tolist()


@pytest.mark.parametrize(
    ("name", "writer", "shape"),
    [("fashion_mnist", write_fashion_mnist, (1, 28, 28)), ("cifar10", write_cifar10, (3, 32, 32))],
)
def test_torchvision_dataset_from_disk(tmp_path: Path, name: str, writer, shape: tuple) -> None:
    writer(tmp_path)
    splits = data.load(name, root=tmp_path)
    assert splits.input_shape == shape and splits.num_classes == 10
    assert (len(splits.train), len(splits.val), len(splits.test)) == (90, 10, 20)
    assert torch.bincount(splits.val.tensors[1]).tolist() == [1] * 10  # 10% of every class
    train_ids, val_ids = image_ids(splits.train.tensors[0]), image_ids(splits.val.tensors[0])
    assert sorted(train_ids + val_ids) == list(range(100))  # val carved from train, no overlap
    assert splits.train.tensors[1].tolist() == [i % 10 for i in train_ids]  # labels follow
    assert image_ids(splits.test.tensors[0]) == list(range(20))  # the official test set, whole
    x = splits.train.tensors[0]
    assert x.dtype == torch.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert torch.allclose(x[:, 0, 0, 1], torch.tensor(250 / 255))  # rows and columns in place
    assert torch.allclose(x[:, -1, 1, 0], torch.tensor(251 / 255))  # channels in place
    other = image_ids(data.load(name, root=tmp_path, seed=1).val.tensors[0])
    assert other != val_ids  # the seed picks the validation images


def test_torchvision_options_and_env_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_fashion_mnist(tmp_path)
    monkeypatch.setenv("NAS_LAB_DATA", str(tmp_path))
    splits = data.load("FashionMNIST", train_fraction=0.5, resolution=14)  # alias and options
    assert splits.name == "fashion_mnist" and splits.input_shape == (1, 14, 14)
    assert len(splits.train) == 50 and len(splits.val) == 10


@pytest.mark.parametrize(
    ("name", "writer", "remove", "alias"),
    [
        (
            "fashion_mnist",
            write_fashion_mnist,
            "FashionMNIST/raw/t10k-labels-idx1-ubyte",
            "fashion-mnist",
        ),
        ("cifar10", write_cifar10, "cifar-10-batches-py/test_batch", "CIFAR-10"),
    ],
)
def test_missing_files_say_where_and_how(
    tmp_path: Path, name: str, writer, remove: str, alias: str
) -> None:
    with pytest.raises(FileNotFoundError) as err:
        data.load(alias, root=tmp_path / "empty")
    message = str(err.value)
    assert str(tmp_path / "empty") in message and "download=True" in message
    assert f"load({name!r}, download=True)" in message

    writer(tmp_path)
    (tmp_path / remove).unlink()
    with pytest.raises(FileNotFoundError, match=Path(remove).name) as err:
        data.load(name, root=tmp_path)
    assert "digits" in str(err.value)  # and the offline alternative
