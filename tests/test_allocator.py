"""nasviz.allocator: glibc keeps the freed heap between steps; NASVIZ_MALLOC and MALLOC_* win."""

import ctypes

import pytest
import torch

from nasviz import allocator


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("NASVIZ_MALLOC", *allocator._USER_TUNING):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_rule(clean_env):
    assert allocator.wanted("cpu")
    assert not allocator.wanted("cuda")  # nothing changes on a GPU
    clean_env.setenv("MALLOC_TRIM_THRESHOLD_", "131072")  # glibc tuned by the user: left alone
    assert not allocator.wanted("cpu")
    clean_env.delenv("MALLOC_TRIM_THRESHOLD_")
    clean_env.setenv("NASVIZ_MALLOC", "default")
    assert not allocator.wanted("cpu")
    clean_env.setenv("NASVIZ_MALLOC", "Keep")
    assert allocator.wanted("cpu")


def test_bad_environment_value_is_named(clean_env):
    clean_env.setenv("NASVIZ_MALLOC", "off")
    with pytest.raises(ValueError, match="NASVIZ_MALLOC must be 'keep' or 'default', got 'off'"):
        allocator.apply("cpu")


class _MallInfo2(ctypes.Structure):  # glibc >= 2.33 <malloc.h>
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _mallinfo() -> _MallInfo2:
    """glibc's statistics of the main heap (arena: bytes held from the kernel; uordblks: bytes in
    use; hblkhd: bytes in blocks mapped on their own)."""
    libc = allocator._libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


def test_the_freed_heap_is_kept_for_the_next_step(clean_env):
    """A 24 MiB tensor comes from the heap and its memory stays there once freed (glibc's own
    thresholds would map it on its own, or give the heap's top back to the kernel)."""
    clean_env.setattr(allocator, "_applied", None)
    assert allocator.apply("cpu") is True
    before = _mallinfo()
    t = torch.ones(6 * 2**20)  # 24 MiB
    after = _mallinfo()
    assert after.uordblks >= before.uordblks + t.nbytes  # from the heap (free space or grown)
    assert after.hblkhd == before.hblkhd  # not a mapping of its own
    del t
    assert _mallinfo().arena == after.arena  # kept, not trimmed
    assert allocator.apply("cpu") is True  # once per process


def test_apply_is_a_no_op_where_not_wanted(clean_env):
    clean_env.setattr(allocator, "_applied", None)
    clean_env.setenv("NASVIZ_MALLOC", "default")
    assert allocator.apply("cpu") is False
    assert allocator._applied is None  # a later search that wants it still sets it


def test_a_search_and_a_retraining_apply_it(clean_env):
    from nasviz.data import synthetic_dataset
    from nasviz.search import create_search, preset
    from nasviz.train import Retrainer, retrain_preset

    seen = []
    clean_env.setattr(allocator, "apply", lambda device: seen.append(str(device)) or True)
    data = synthetic_dataset("digits", 32, seed=0), synthetic_dataset("digits", 16, seed=1)
    cfg = preset("darts", "smoke", C=4, layers=3, batch_size=8)
    create_search(cfg, None, train_data=data[0], val_data=data[1])
    tcfg = retrain_preset("quick", C=4, layers=3, epochs=1, batch_size=8, device="cpu")
    Retrainer("darts_v2", tcfg, train_data=data[0], test_data=data[1])
    assert seen == ["cpu", "cpu"]
