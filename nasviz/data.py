"""Datasets and GPU-resident batches with augmentation.

Three datasets: ``digits`` (the embedded default, bundled with scikit-learn, works offline),
``cifar10`` (through torchvision) and ``imagenet-folder`` (any ImageFolder tree, e.g. ImageNet:
``root/train/<class>/*.jpeg`` and ``root/val/<class>/*.jpeg``, read with torchvision's
``ImageFolder``, resized and centre-cropped to ``image_size`` and held in memory as uint8, so
it is meant for subsets or downsampled copies that fit there). A split is held as one uint8 tensor ``[N, C, H, W]``; the
``DeviceLoader`` keeps it on the device and does crop, flip, normalization and cutout on whole
batches there, as in KellerJordan/cifar10-airbench: no DataLoader workers in the hot loop.

scikit-learn and torchvision are imported lazily, so this module needs only torch and numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

KNOWN_DATASETS = ("digits", "cifar10", "imagenet-folder")

CIFAR10_FOLDER = "cifar-10-batches-py"


@dataclass(frozen=True)
class DatasetInfo:
    """Shape, normalization and augmentation settings of one dataset."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int  # random-crop padding for train augmentation (4 for CIFAR-10)
    flip: bool  # horizontal flips (off for digits: digits are not mirror-symmetric)
    cutout: int  # side of the cutout square used when retraining (16 for CIFAR-10)


_INFOS = {
    # mean/std of the pixels scaled to [0, 1], computed once from the digits train split
    # (1437 images) and written here as constants. pad = 4/32 and cutout = 16/32 of 8 px.
    "digits": DatasetInfo(
        name="digits",
        num_classes=10,
        in_channels=1,
        image_size=8,
        mean=(0.3050,),
        std=(0.3756,),
        pad=1,
        flip=False,
        cutout=4,
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        num_classes=10,
        in_channels=3,
        image_size=32,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        pad=4,
        flip=True,
        cutout=16,
    ),
    # ImageNet statistics; the class count and size are set from the folder when it is read.
    # pad = 28/224 (a translation of 1/8, as CIFAR's 4/32), cutout 112/224 (16/32).
    "imagenet-folder": DatasetInfo(
        name="imagenet-folder",
        num_classes=1000,
        in_channels=3,
        image_size=224,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        pad=28,
        flip=True,
        cutout=112,
    ),
}

#: The sub-folders of an imagenet-folder root holding each split.
IMAGEFOLDER_SPLITS = {"train": "train", "test": "val"}


@dataclass
class ImageDataset:
    """A whole split as tensors: uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor
    info: DatasetInfo

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 [N, C, H, W], got {self.images.dtype} "
                f"{list(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels must be int64 [N] with N={self.images.shape[0]}, got "
                f"{self.labels.dtype} {list(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> ImageDataset:
        """Return a copy with images and labels on ``device``."""
        return replace(self, images=self.images.to(device), labels=self.labels.to(device))

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """Return the samples at ``indices`` (a 1-D index tensor) as a new dataset."""
        indices = torch.as_tensor(indices, device=self.images.device)
        return replace(self, images=self.images[indices], labels=self.labels[indices])


def known_datasets() -> list[str]:
    """Names accepted by ``dataset_info`` and ``load_dataset``."""
    return list(KNOWN_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The ``DatasetInfo`` of a known dataset; unknown names raise ValueError."""
    if name not in _INFOS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN_DATASETS)}")
    return _INFOS[name]


def load_dataset(
    name: str,
    split: str = "train",
    root: str | Path = "data",
    download: bool = False,
    image_size: int | None = None,
) -> ImageDataset:
    """Load the ``train`` or ``test`` split of a known dataset as uint8 tensors on the CPU.

    ``image_size`` applies to ``imagenet-folder`` only (default 224).
    """
    info = dataset_info(name)
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; allowed splits: train, test")
    if name == "imagenet-folder":
        return _load_image_folder(split, Path(root), image_size or info.image_size, info)
    if name == "digits":
        images, labels = _load_digits(split)
    else:
        images, labels = _load_cifar10(split, Path(root), download)
    return ImageDataset(images, labels, info)


def _load_digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 bundled 8x8 digits, 0..16 scaled to uint8, with a fixed split.

    The native 8x8 resolution is kept on purpose: the images carry no more information at a
    higher resolution, and a DARTS supernet costs ~16x more at 32x32. At 8x8 the quick search
    takes minutes on 2 CPU cores, and the networks' two reductions take 8x8 to 2x2, which is
    still a valid cell space. The split is fixed: a permutation from seed 0, the last 20%
    (360 images) are the test split, the other 1437 the train split.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    scaled = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)  # [N, 8, 8]
    images = torch.from_numpy(scaled).unsqueeze(1)  # [N, 1, 8, 8]
    labels = torch.from_numpy(digits.target).to(torch.int64)
    n = images.shape[0]
    n_test = math.ceil(0.2 * n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    idx = order[: n - n_test] if split == "train" else order[n - n_test :]
    return images[idx].contiguous(), labels[idx]


def _load_cifar10(split: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 through torchvision, as uint8 NCHW images and int64 labels."""
    from torchvision.datasets import CIFAR10

    folder = root.expanduser().absolute() / CIFAR10_FOLDER
    try:
        ds = CIFAR10(str(root), train=split == "train", download=download)
    except RuntimeError as err:
        if "not found or corrupted" not in str(err):
            raise
        raise FileNotFoundError(
            f"CIFAR-10 not found or corrupted in {folder}; pass download=True "
            f"(CLI flag --download) to download it, or place the files of the extracted "
            f"cifar-10-python.tar.gz there"
        ) from err
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(ds.targets, dtype=torch.int64)
    return images, labels


def _load_image_folder(split: str, root: Path, size: int, info: DatasetInfo) -> ImageDataset:
    """An ImageFolder split (``root/train`` or ``root/val``): resize the short side to
    ``size / 0.875``, centre-crop ``size`` (the usual ImageNet evaluation transform), uint8."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    if size < 8:
        raise ValueError(f"image_size must be >= 8 pixels, got {size}")
    folder = root.expanduser() / IMAGEFOLDER_SPLITS[split]
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no ImageFolder split at {folder}: imagenet-folder reads --data-root DIR with "
            f"DIR/train/<class>/<images> and DIR/val/<class>/<images>"
        )
    tf = transforms.Compose(
        [
            transforms.Resize(int(round(size / 0.875))),
            transforms.CenterCrop(size),
            transforms.PILToTensor(),
        ]
    )
    try:
        ds = ImageFolder(str(folder), transform=lambda im: tf(im.convert("RGB")))
    except FileNotFoundError as exc:  # no class folders, or no images in them
        raise FileNotFoundError(f"{folder}: {exc}") from exc
    images = torch.stack([ds[i][0] for i in range(len(ds))])  # [N, 3, size, size] uint8
    labels = torch.tensor(ds.targets, dtype=torch.int64)
    return ImageDataset(images, labels, replace(info, num_classes=len(ds.classes), image_size=size))


def search_split(train: ImageDataset, portion: float = 0.5) -> tuple[ImageDataset, ImageDataset]:
    """Split a train set in order: the first ``portion`` trains weights, the rest alphas.

    Fixed and deterministic, as in DARTS (first 25k / last 25k of the CIFAR-10 train set).
    """
    if not 0.0 < portion < 1.0:
        raise ValueError(f"portion must be in (0, 1), got {portion}")
    n = len(train)
    split = int(math.floor(portion * n))
    if split == 0 or split == n:
        raise ValueError(f"portion {portion} of {n} samples leaves one half empty")
    device = train.images.device
    return (
        train.subset(torch.arange(0, split, device=device)),
        train.subset(torch.arange(split, n, device=device)),
    )


def synthetic_dataset(info: DatasetInfo | str, n: int, seed: int = 0) -> ImageDataset:
    """Random uint8 images and labels of a dataset's shape, for speed benchmarks."""
    if isinstance(info, str):
        info = dataset_info(info)
    if n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n}")
    g = torch.Generator().manual_seed(seed)
    shape = (n, info.in_channels, info.image_size, info.image_size)
    images = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    labels = torch.randint(0, info.num_classes, (n,), generator=g, dtype=torch.int64)
    return ImageDataset(images, labels, info)


# ---- augmentation on whole batches [B, C, H, W]; any dtype, any device -------------------------
# The generator must live on x.device (torch draws on the generator's device).


def random_crop(
    x: torch.Tensor, pad: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pad by ``pad`` zeros and crop back at a random offset per sample (a random translation)."""
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if pad == 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # [B, C, H+2p, W+2p], zero fill
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [B, 1, H, 1]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [B, 1, 1, W]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]  # one gather for the whole batch


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each sample left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square per sample, centred uniformly in the image, clipped.

    As in the Cutout paper and DARTS the centre may lie near a border, so the square is clipped
    there; apply it after normalization so the square is exactly 0.
    """
    if size < 0:
        raise ValueError(f"cutout size must be >= 0, got {size}")
    if size == 0:
        return x
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1), generator=generator, device=x.device)
    cx = torch.randint(0, w, (b, 1), generator=generator, device=x.device)
    y0, x0 = cy - size // 2, cx - size // 2  # unclipped square [y0, y0+size) x [x0, x0+size)
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_y = (ys >= y0) & (ys < y0 + size)  # [B, H]
    in_x = (xs >= x0) & (xs < x0 + size)  # [B, W]
    mask = in_y[:, :, None] & in_x[:, None, :]  # [B, H, W]
    return x.masked_fill(mask[:, None], 0)


class DeviceLoader:
    """The whole split as one tensor on `device`; augmentation on whole batches on the device.

    Batches come from one stream: ``next()`` continues the current epoch's order and starts a
    new epoch when it runs out; iterating yields the rest of the epoch in progress (for example
    after ``load_state_dict`` mid-epoch) or else one new epoch. With ``drop_last=False`` the last
    batch of an epoch may be smaller. All randomness comes from one ``torch.Generator`` on
    ``device``, saved in ``state_dict``, so a resumed run sees exactly the same batches.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        train: bool = True,
        cutout: bool = False,
        drop_last: bool | None = None,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.data = dataset.to(self.device)
        self.info = dataset.info
        self.batch_size = batch_size
        self.train = train
        self.cutout = cutout
        self.drop_last = train if drop_last is None else drop_last
        self.seed = seed
        self.channels_last = channels_last
        if len(self) == 0:
            raise ValueError(
                f"no batches: {len(dataset)} samples, batch_size {batch_size}, "
                f"drop_last={self.drop_last}; use a smaller batch_size or drop_last=False"
            )
        # x_norm = (x / 255 - mean) / std = x * scale + shift, per channel
        std = torch.tensor(self.info.std, device=self.device).view(1, -1, 1, 1)
        mean = torch.tensor(self.info.mean, device=self.device).view(1, -1, 1, 1)
        self._scale, self._shift = 1.0 / (255.0 * std), -mean / std
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.epoch = 0  # epochs started
        self._perm: torch.Tensor | None = None
        self._pos = 0

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` batches until the end of the epoch in progress or a new one."""
        if self._exhausted():
            self._new_epoch()
        while not self._exhausted():
            yield self._take()

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Next batch of the endless stream, starting a new epoch when the current one ends."""
        if self._exhausted():
            self._new_epoch()
        return self._take()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed for an exact resume: generator, order, position, epoch."""
        return {
            "generator": self.generator.get_state(),
            "perm": None if self._perm is None else self._perm.cpu(),
            "pos": self._pos,
            "epoch": self.epoch,
            "num_samples": len(self.data),
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict`` taken from a loader over the same dataset."""
        if state["num_samples"] != len(self.data):
            raise ValueError(
                f"state is for {state['num_samples']} samples, this loader has {len(self.data)}"
            )
        self.generator.set_state(state["generator"].cpu())
        perm = state["perm"]
        self._perm = None if perm is None else perm.to(self.device)
        self._pos = int(state["pos"])
        self.epoch = int(state["epoch"])

    def _exhausted(self) -> bool:
        if self._perm is None:
            return True
        left = len(self.data) - self._pos
        return left < self.batch_size if self.drop_last else left <= 0

    def _new_epoch(self) -> None:
        n = len(self.data)
        if self.train:
            self._perm = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            self._perm = torch.arange(n, device=self.device)
        self._pos = 0
        self.epoch += 1

    def _take(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self._perm is not None
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += idx.shape[0]
        x, y = self.data.images[idx], self.data.labels[idx]  # uint8 [B, C, H, W], int64 [B]
        if self.train:  # crop and flip on uint8: 4x less memory traffic than on float
            x = random_crop(x, self.info.pad, self.generator)
            if self.info.flip:
                x = random_flip(x, self.generator)
        x = x.float() * self._scale + self._shift
        if self.train and self.cutout:
            x = cutout(x, self.info.cutout, self.generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y
