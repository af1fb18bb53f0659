"""The imagenet-folder dataset: a tiny ImageFolder tree of real JPEG and PNG files."""

import numpy as np
import pytest
import torch
from PIL import Image

from nasviz.data import DeviceLoader, load_dataset


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("n01440764", "n01443537"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                size = (40 + 7 * i, 30 + 5 * i)  # not square, not the target size
                arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                ext = "JPEG" if i % 2 == 0 else "png"
                Image.fromarray(arr).save(folder / f"{cls}_{i}.{ext}")
    return root


def test_reads_train_and_val_as_uint8_at_the_size_asked(tree):
    train = load_dataset("imagenet-folder", "train", root=tree, image_size=16)
    test = load_dataset("imagenet-folder", "test", root=tree, image_size=16)
    assert train.images.shape == (6, 3, 16, 16) and train.images.dtype == torch.uint8
    assert test.images.shape == (4, 3, 16, 16)
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert train.info.num_classes == 2 and train.info.image_size == 16
    x, y = DeviceLoader(train, 4, seed=0).next()  # ImageNet normalization, crop and flip
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32 and y.shape == (4,)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ImageFolder split at .*train"):
        load_dataset("imagenet-folder", "train", root=tmp_path)
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="train"):
        load_dataset("imagenet-folder", "train", root=tmp_path)
