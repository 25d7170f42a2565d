"""nas_lab.train: the shared trainer learns, repeats itself exactly, and rejects bad shapes."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from nas_lab import data
from nas_lab.train import History, batches, evaluate, seed_everything, train


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks train fastest on one thread: on a busy 2-core machine, torch's default
    of 2 intra-op threads made 5 digits epochs take ~1.2 s instead of ~0.07 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> data.Splits:
    return data.load()


def tiny_net(seed: int = 0, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, num_classes),
    )


class ConstantClass(nn.Module):
    """Predicts ``label`` for every image (the parameter only gives it a device)."""

    def __init__(self, label: int, num_classes: int = 10) -> None:
        super().__init__()
        self.label, self.num_classes = label, num_classes
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), self.num_classes, device=x.device) + self.anchor
        logits[:, self.label] = 1.0
        return logits


def test_tiny_conv_net_learns_fast(digits: data.Splits) -> None:
    start = time.perf_counter()
    history = train(tiny_net(), digits, epochs=5, progress=False)
    assert time.perf_counter() - start < 5.0
    assert len(history.train_loss) == len(history.val_acc) == 5
    assert history.val_acc[-1] > 0.5 and history.test_acc > 0.5  # chance is 0.1
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]  # the loss goes down
    assert all(0.0 <= acc <= 1.0 for acc in history.val_acc)
    assert 0.0 < history.train_time < time.perf_counter() - start


def test_same_seed_same_history(digits: data.Splits) -> None:
    first = train(tiny_net(seed=1), digits, epochs=3, seed=7, progress=False)
    second = train(tiny_net(seed=1), digits, epochs=3, seed=7, progress=False)
    assert first.train_loss == second.train_loss  # exact, not approximate
    assert first.val_acc == second.val_acc and first.test_acc == second.test_acc
    other = train(tiny_net(seed=1), digits, epochs=3, seed=8, progress=False)
    assert other.train_loss != first.train_loss  # the seed changes the batch order


def test_adam_and_options(digits: data.Splits) -> None:
    history = train(
        tiny_net(), digits, epochs=2, optimizer="Adam", lr=0.01, eval_test=False, progress=True
    )
    assert history.test_acc is None and history.val_acc[-1] > 0.5
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; choose one of sgd, adam"):
        train(tiny_net(), digits, epochs=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train(tiny_net(), digits, epochs=0, progress=False)


def test_wrong_number_of_classes_is_named(digits: data.Splits) -> None:
    with pytest.raises(ValueError) as err:
        train(tiny_net(num_classes=5), digits, epochs=1, progress=False)
    message = str(err.value)
    assert "10 class scores" in message and "(2, 10)" in message and "(2, 5)" in message


def test_wrong_input_shape_is_named(digits: data.Splits) -> None:
    with pytest.raises(ValueError) as err:
        train(tiny_net(in_channels=3), digits, epochs=1, progress=False)
    message = str(err.value)
    assert "(2, 1, 8, 8)" in message and "input_shape (1, 8, 8)" in message
    big = data.load(resolution=16)  # a 16x16 input no longer fits Linear(8 * 4 * 4, ...)
    with pytest.raises(ValueError, match=r"\(2, 1, 16, 16\)"):
        train(tiny_net(), big, epochs=1, progress=False)


def test_evaluate_matches_a_hand_count(digits: data.Splits) -> None:
    labels = digits.test.tensors[1].tolist()
    for label in (0, 3):
        model = ConstantClass(label).train()
        expected = sum(y == label for y in labels) / len(labels)
        assert evaluate(model, digits.test, batch_size=50) == expected  # 50: ragged last batch
        assert model.training  # the mode is restored


def test_evaluate_rejects_a_bad_output_shape(digits: data.Splits) -> None:
    flat = nn.Sequential(nn.Flatten(0))  # returns a 1-D tensor
    with pytest.raises(ValueError, match=r"shape \(batch, num_classes\)"):
        evaluate(flat, digits.test)


class ListDataset(Dataset):
    """A dataset that is not a TensorDataset, to exercise the general path."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.items = list(zip(x, y, strict=True))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def test_both_batch_paths_give_the_same_batches(digits: data.Splits) -> None:
    x, y = digits.train.tensors[0][:129], digits.train.tensors[1][:129]
    fast_ds, slow_ds = torch.utils.data.TensorDataset(x, y), ListDataset(x, y)
    cpu = torch.device("cpu")
    fast = list(batches(fast_ds, 64, torch.Generator().manual_seed(0), cpu))
    slow = list(batches(slow_ds, 64, torch.Generator().manual_seed(0), cpu))
    assert [len(b[1]) for b in fast] == [64, 64]  # a trailing batch of one is dropped
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        assert torch.equal(xf, xs) and torch.equal(yf, ys)
    seen = torch.cat([b[1] for b in fast])
    assert not torch.equal(seen, y[:128])  # shuffled
    in_order = list(batches(fast_ds, 64, None, cpu))
    assert [len(b[1]) for b in in_order] == [64, 64, 1]  # evaluation keeps every sample


def test_history_helpers() -> None:
    history = History(train_loss=[2.0, 1.0], val_acc=[0.4, 0.7, 0.6], test_acc=0.65)
    assert history.best_val == 0.7
    record = json.loads(json.dumps(history.to_dict()))
    assert record["best_val"] == 0.7 and record["val_acc"] == [0.4, 0.7, 0.6]
    with pytest.raises(ValueError, match="no epochs"):
        History().best_val  # noqa: B018


def test_seed_everything_repeats_every_generator() -> None:
    def draw() -> tuple:
        return random.random(), np.random.rand(), torch.rand(()).item()

    seed_everything(5)
    first = draw()
    seed_everything(5)
    assert draw() == first
    seed_everything(6)
    assert draw() != first
