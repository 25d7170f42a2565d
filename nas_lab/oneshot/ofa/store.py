"""Shipping Once-for-All's supernet: build it, save it with a manifest, verify and load it.

``nas-lab ofa build`` trains the supernet with progressive shrinking (Cai, Gan, Wang, Zhang &
Han, "Once-for-All: Train One Network and Specialize it for Efficient Deployment", ICLR 2020,
Section 3.2) and the lesson's from-scratch baselines, and saves them with a manifest;
:func:`load_supernet` checks the sha256 (``nas_lab.datafiles``) and loads it.
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import numpy as np
import torch

from nas_lab.data import Splits
from nas_lab.datafiles import data_file, read_manifest, write_manifest
from nas_lab.oneshot.ofa.elastic import OFASupernet, extreme_arch
from nas_lab.oneshot.ofa.shrinking import ShrinkingRecipe, train_supernet
from nas_lab.spaces.mbconv import ChainArch, ChainSpace

SUPERNET = data_file("ofa_supernet.pt")
BUILD_COMMAND = "nas-lab ofa build --out data/ofa_supernet.pt --seed 0"

_SPACE_FIELDS = (
    "kernels",
    "expansions",
    "depths",
    "widths",
    "strides",
    "stem_channels",
    "head_channels",
    "num_classes",
    "in_channels",
)


def space_config(space: ChainSpace) -> dict:
    """The fields that rebuild ``space``: what the saved supernet and its manifest record."""
    return {name: getattr(space, name) for name in _SPACE_FIELDS}


def save_supernet(net: OFASupernet, path: str | Path, log: dict, command: str) -> dict:
    """Write the weights and the space to ``path`` and a manifest beside it (sha256, command,
    library and torch versions, date, machine, the training log). Returns the manifest."""
    from nas_lab import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"space": space_config(net.space), "state_dict": state}, path)
    return write_manifest(
        path,
        command=command,
        nas_lab=__version__,
        torch=torch.__version__,
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine={"platform": platform.platform(), "processor": platform.processor()},
        space=space_config(net.space),
        **log,
    )


def load_supernet(
    path: str | Path | None = None, fast: bool = False, seed: int = 0, progress: bool = True
) -> tuple[OFASupernet, dict]:
    """The trained supernet and its manifest.

    Loads ``path`` (default: the shipped ``data/ofa_supernet.pt``) after checking its sha256
    against the manifest. When the file is missing, trains one now with progressive shrinking:
    the full recipe (about ten minutes on two cores), or with ``fast=True`` a tiny one (seconds,
    far less accurate). A file that does not match its manifest is an error, never silently
    replaced."""
    path = SUPERNET if path is None else Path(path)
    if not path.exists():
        recipe = ShrinkingRecipe.tiny() if fast else ShrinkingRecipe()
        print(f"no supernet at {path}: training one now ({'tiny, fast mode' if fast else 'full'})")
        net, log = train_supernet(recipe=recipe, seed=seed, progress=progress)
        return net, {"trained_now": True, "fast": fast, **log}
    manifest = read_manifest(
        path, f"restore it with `git checkout data/`, or rebuild it with `{BUILD_COMMAND}`"
    )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    net = OFASupernet(ChainSpace(**payload["space"]))
    net.load_state_dict(payload["state_dict"])
    return net.eval(), manifest


def reference_subnets(space: ChainSpace, count: int = 6, seed: int = 0) -> list[ChainArch]:
    """The subnets the lesson compares with training from scratch: the largest, the smallest
    and ``count - 2`` drawn at random (seeded)."""
    rng = np.random.default_rng(seed)
    archs = [extreme_arch(space, max), extreme_arch(space, min)]
    while len(archs) < count:
        arch = space.sample(rng)
        if arch not in archs:
            archs.append(arch)
    return archs


def train_from_scratch(
    space: ChainSpace, arch: ChainArch, splits: Splits, epochs: int, seed: int = 0
) -> dict:
    """The baseline: ``arch`` built with fresh weights and trained alone with the course's
    recipe (``nas_lab.train.train``). Returns its test and validation accuracy."""
    from nas_lab.train import train

    net = space.build(arch, seed=seed)
    history = train(net, splits, epochs=epochs, seed=seed, device="cpu", progress=False)
    return {
        "arch": str(arch),
        "test_acc": history.test_acc,
        "val_acc": history.val_acc[-1],
        "epochs": epochs,
        "seconds": round(history.train_time, 2),
    }


def build(
    out: str | Path,
    seed: int = 0,
    fast: bool = False,
    progress: bool = True,
    recipe: ShrinkingRecipe | None = None,
) -> dict:
    """What ``nas-lab ofa build`` runs: train the supernet with progressive shrinking, train the
    reference subnets from scratch (the lesson's baselines), save both with a manifest."""
    from nas_lab import data

    recipe = recipe or (ShrinkingRecipe.tiny() if fast else ShrinkingRecipe())
    splits = data.load("digits", seed=seed)
    net, log = train_supernet(splits=splits, recipe=recipe, seed=seed, progress=progress)
    log["scratch"] = [
        train_from_scratch(net.space, arch, splits, recipe.scratch_epochs, seed)
        for arch in reference_subnets(net.space, seed=seed)
    ]
    log["recipe"] = {
        "epochs": recipe.epochs,
        "lr": recipe.lr,
        "subnets_per_step": recipe.subnets_per_step,
        "batch_size": recipe.batch_size,
        "weight_decay": recipe.weight_decay,
        "kd_ratio": recipe.kd_ratio,
        "temperature": recipe.temperature,
        "scratch_epochs": recipe.scratch_epochs,
        "dataset": "digits",
        "data_seed": seed,
        "threads": torch.get_num_threads(),
    }
    command = f"nas-lab ofa build --out {out} --seed {seed}" + (" --fast" if fast else "")
    return save_supernet(net, out, log, command)
