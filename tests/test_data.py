"""Tests for nasviz.data: datasets, search split, augmentation and the device loader."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nasviz import data
from nasviz.data import DatasetInfo, DeviceLoader, ImageDataset

# ---- datasets --------------------------------------------------------------------------------


def test_known_datasets_and_info():
    assert data.known_datasets() == ["digits", "cifar10", "imagenet-folder"]
    cifar, digits = data.dataset_info("cifar10"), data.dataset_info("digits")
    assert (cifar.in_channels, cifar.image_size, cifar.pad, cifar.flip) == (3, 32, 4, True)
    assert cifar.cutout == 16
    assert (digits.in_channels, digits.image_size, digits.pad, digits.flip) == (1, 8, 1, False)
    assert digits.cutout == 4 and digits.num_classes == cifar.num_classes == 10


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(
        ValueError, match="unknown dataset 'mnist'; known datasets: digits, cifar10"
    ):
        data.dataset_info("mnist")
    with pytest.raises(ValueError, match="known datasets"):
        data.load_dataset("mnist")


def test_bad_split():
    with pytest.raises(ValueError, match="'valid'.*train, test"):
        data.load_dataset("digits", split="valid")


def test_digits_shapes_split_and_determinism():
    train = data.load_dataset("digits", "train")
    test = data.load_dataset("digits", "test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape == (1437, 1, 8, 8) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64
    for split in (train, test):
        assert split.labels.min() >= 0 and split.labels.max() <= 9
    assert train.images.max() == 255 and train.images.min() == 0
    again = data.load_dataset("digits", "train")
    assert torch.equal(train.images, again.images) and torch.equal(train.labels, again.labels)
    # train and test are disjoint: together they hold every image exactly once
    from sklearn.datasets import load_digits

    assert len(train) + len(test) == len(load_digits().images)


def test_digits_constants_match_train_split():
    train = data.load_dataset("digits", "train")
    pixels = train.images.float() / 255
    info = train.info
    assert pixels.mean().item() == pytest.approx(info.mean[0], abs=1e-3)
    assert pixels.std().item() == pytest.approx(info.std[0], abs=1e-3)


def _write_fake_cifar(root: Path, per_batch: int = 3) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Write cifar-10-batches-py in the real layout; return what each file holds.

    The real files are Python 2 pickles whose str keys torchvision reads back as str (it
    unpickles with encoding="latin1"), so str keys here give what torchvision sees.
    """
    folder = root / data.CIFAR10_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        pixels = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        entry = {"batch_label": name, "labels": labels, "data": pixels}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        written[name] = (pixels, labels)
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer"] + ["x"] * 5}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """A generated CIFAR-10 folder whose md5s torchvision's real integrity check accepts."""
    from torchvision.datasets import CIFAR10

    written = _write_fake_cifar(tmp_path)
    folder = tmp_path / data.CIFAR10_FOLDER
    train_list = [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")] for i in range(1, 6)]
    monkeypatch.setattr(CIFAR10, "train_list", train_list)
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    meta = dict(CIFAR10.meta, md5=_md5(folder / "batches.meta"))
    monkeypatch.setattr(CIFAR10, "meta", meta)
    return tmp_path, written


def test_cifar10_loads_real_format(fake_cifar):
    root, written = fake_cifar
    train = data.load_dataset("cifar10", "train", root=root)
    test = data.load_dataset("cifar10", "test", root=str(root))
    assert train.images.shape == (15, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (3, 3, 32, 32) and test.labels.dtype == torch.int64
    assert train.info == data.dataset_info("cifar10")

    pixels, labels = written["data_batch_2"]  # samples 3..5 of the train split
    assert train.labels[3:6].tolist() == labels
    image = train.images[4]  # second image of data_batch_2: 1024 R, then 1024 G, then 1024 B
    for c in range(3):
        expected = torch.from_numpy(pixels[1, 1024 * c : 1024 * (c + 1)].reshape(32, 32))
        assert torch.equal(image[c], expected)
    pixels, labels = written["test_batch"]
    assert test.labels.tolist() == labels
    assert torch.equal(test.images.reshape(3, -1), torch.from_numpy(pixels))


def test_cifar10_corrupted_file_is_reported(fake_cifar):
    root, _ = fake_cifar
    (root / data.CIFAR10_FOLDER / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(FileNotFoundError, match="download"):
        data.load_dataset("cifar10", root=root)


def test_cifar10_missing_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_dataset("cifar10", root=tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "download=True" in message and "--download" in message


def _indexed_dataset(n: int, info: DatasetInfo | str = "digits") -> ImageDataset:
    """A synthetic dataset whose labels are the sample indices, to track coverage."""
    ds = data.synthetic_dataset(info, n, seed=1)
    return ImageDataset(ds.images, torch.arange(n), ds.info)


def test_search_split_disjoint_and_covering():
    train = _indexed_dataset(101)
    first, second = data.search_split(train)
    assert (len(first), len(second)) == (50, 51)
    assert torch.equal(first.labels, torch.arange(50))  # first half in order, as in DARTS
    assert torch.equal(torch.cat([first.labels, second.labels]), torch.arange(101))
    assert torch.equal(second.images, train.images[50:])
    first, second = data.search_split(train, portion=0.8)
    assert (len(first), len(second)) == (80, 21)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="portion"):
            data.search_split(train, portion=bad)


def test_synthetic_dataset():
    ds = data.synthetic_dataset("cifar10", 7, seed=3)
    assert ds.images.shape == (7, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.labels.max() < 10 and ds.labels.dtype == torch.int64
    assert torch.equal(ds.images, data.synthetic_dataset(ds.info, 7, seed=3).images)
    assert not torch.equal(ds.images, data.synthetic_dataset(ds.info, 7, seed=4).images)
    with pytest.raises(ValueError, match="n must be"):
        data.synthetic_dataset("digits", 0)


def test_image_dataset_validates_and_subsets():
    ds = _indexed_dataset(10)
    sub = ds.subset(torch.tensor([3, 1]))
    assert sub.labels.tolist() == [3, 1] and torch.equal(sub.images[0], ds.images[3])
    assert len(ds.to("cpu")) == 10
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(ds.images.float(), ds.labels, ds.info)
    with pytest.raises(ValueError, match="int64"):
        ImageDataset(ds.images, ds.labels[:5], ds.info)


# ---- augmentation ----------------------------------------------------------------------------


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` [C, H, W] translated by (dy, dx) with zero fill."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_random_crop_is_a_zero_filled_translation():
    pad = 2
    x = torch.rand(64, 3, 8, 8, generator=_gen()) + 1.0  # nonzero, so zero fill is visible
    out = data.random_crop(x, pad, _gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    shifts = set()
    for image, cropped in zip(x, out, strict=True):
        found = [
            (dy, dx)
            for dy in range(-pad, pad + 1)
            for dx in range(-pad, pad + 1)
            if torch.equal(cropped, _shift(image, dy, dx))
        ]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 10  # offsets really vary per sample
    assert torch.equal(data.random_crop(x, 0, _gen(1)), x)
    assert torch.equal(out, data.random_crop(x, pad, _gen(1)))  # reproducible from the generator


def test_random_crop_on_uint8():
    x = torch.randint(1, 256, (16, 1, 8, 8), dtype=torch.uint8, generator=_gen())
    out = data.random_crop(x, 1, _gen(2))
    assert out.dtype == torch.uint8 and out.shape == x.shape


def test_random_flip_mirrors_some_samples():
    x = torch.rand(64, 3, 5, 7, generator=_gen())
    out = data.random_flip(x, _gen(1))
    assert out.shape == x.shape
    same = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    mirrored = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)]
    assert all(s != m for s, m in zip(same, mirrored, strict=True))  # exactly one of the two
    assert any(same) and any(mirrored)


@pytest.mark.parametrize("size", [3, 4])
def test_cutout_zeroes_a_clipped_square(size):
    h = w = 8
    x = torch.ones(200, 2, h, w)
    out = data.cutout(x, size, _gen(size))
    assert out.shape == x.shape
    full = 0
    for sample in out:
        zero = sample == 0
        assert torch.equal(zero[0], zero[1])  # same square in every channel
        rows = zero[0].any(1).nonzero().flatten()
        cols = zero[0].any(0).nonzero().flatten()
        height, width = len(rows), len(cols)
        assert 1 <= height <= size and 1 <= width <= size
        assert zero[0].sum() == height * width  # a filled rectangle ...
        assert rows[-1] - rows[0] + 1 == height and cols[-1] - cols[0] + 1 == width  # contiguous
        inside = rows[0] > 0 and rows[-1] < h - 1 and cols[0] > 0 and cols[-1] < w - 1
        if inside:
            assert height == width == size  # ... of side `size` when not clipped
        full += int(height == width == size)
    assert full > 0
    assert torch.equal(data.cutout(x, 0, _gen()), x)


# ---- DeviceLoader ----------------------------------------------------------------------------


def test_loader_epoch_covers_every_sample_once():
    ds = _indexed_dataset(103)
    loader = DeviceLoader(ds, 10, train=True, drop_last=False, cutout=True)
    assert len(loader) == 11
    batches = list(loader)
    assert len(batches) == 11 and len(batches[-1][0]) == 3
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(103))
    assert not torch.equal(seen, torch.arange(103))  # shuffled
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (10, 1, 8, 8) and y.dtype == torch.int64
    second = torch.cat([y for _, y in loader])
    assert sorted(second.tolist()) == list(range(103)) and not torch.equal(second, seen)
    assert len(DeviceLoader(ds, 10)) == 10  # drop_last defaults to train


def test_eval_loader_fixed_order_normalized_no_augmentation():
    ds = data.load_dataset("digits", "test")
    loader = DeviceLoader(ds, 100, train=False)
    assert len(loader) == 4
    xs, ys = zip(*loader, strict=True)
    x = torch.cat(xs)
    assert torch.equal(torch.cat(ys), ds.labels)
    mean, std = ds.info.mean[0], ds.info.std[0]
    assert torch.allclose(x, (ds.images.float() / 255 - mean) / std, atol=1e-5)
    assert torch.equal(torch.cat([x for x, _ in loader]), x)  # same again next epoch
    assert abs(x.mean().item()) < 0.1 and abs(x.std().item() - 1) < 0.1


def test_loader_channels_last_and_errors():
    ds = data.synthetic_dataset("cifar10", 8)
    x, _ = DeviceLoader(ds, 4, channels_last=True).next()
    assert x.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(ds, 0)
    with pytest.raises(ValueError, match="no batches"):
        DeviceLoader(ds, 16, train=True)


def test_next_persists_and_wraps_into_new_epoch():
    ds = _indexed_dataset(10)
    loader = DeviceLoader(ds, 4, seed=5)  # train: drop_last, 2 batches per epoch
    y1, y2, y3 = (loader.next()[1] for _ in range(3))
    assert loader.epoch == 2
    assert set(y1.tolist()).isdisjoint(y2.tolist())  # same permutation continued
    reference = DeviceLoader(ds, 4, seed=5)
    first_epoch = [y for _, y in reference]
    assert torch.equal(first_epoch[0], y1) and torch.equal(first_epoch[1], y2)
    assert torch.equal(next(iter(reference))[1], y3)  # iteration and next() share one stream


def _batches(loader: DeviceLoader, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [loader.next() for _ in range(k)]


def test_state_dict_resume_is_exact():
    ds = data.synthetic_dataset("cifar10", 50, seed=2)
    uninterrupted = DeviceLoader(ds, 8, seed=3, cutout=True)  # 6 batches per epoch
    expected = _batches(uninterrupted, 15)

    first = DeviceLoader(ds, 8, seed=3, cutout=True)
    _batches(first, 4)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)  # state survives a checkpoint file
    buffer.seek(0)
    resumed = DeviceLoader(ds, 8, seed=99, cutout=True)
    resumed.load_state_dict(torch.load(buffer))
    assert resumed.epoch == 1
    rest = list(resumed)  # iterating finishes the interrupted epoch ...
    rest += _batches(resumed, 9)  # ... and next() goes on across epochs
    assert len(rest) == 11
    for (x, y), (x_ref, y_ref) in zip(rest, expected[4:], strict=True):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)

    with pytest.raises(ValueError, match="50 samples"):
        DeviceLoader(data.synthetic_dataset("cifar10", 40), 8).load_state_dict(first.state_dict())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_loader_on_cuda():
    ds = data.synthetic_dataset("cifar10", 64)
    loader = DeviceLoader(ds, 16, "cuda", cutout=True)
    x, y = loader.next()
    assert x.is_cuda and y.is_cuda and x.shape == (16, 3, 32, 32)
    state = loader.state_dict()
    again = DeviceLoader(ds, 16, "cuda", cutout=True)
    again.load_state_dict(state)
    assert torch.equal(loader.next()[0], again.next()[0])
