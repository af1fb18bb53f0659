"""Checkpoints shared by search and retraining: data only, versioned, written atomically.

A checkpoint is a dict of tensors and plain data (numbers, strings, lists, tuples, dicts), read
back with ``torch.load(weights_only=True)``: a file that asks to build any other Python object
(a crafted pickle whose ``__reduce__`` calls ``os.system``) is refused before any of it runs.
The RNG states are stored as plain data for that reason (`rng_state`).

Format versions (``state["format"]``, written by `save`):

* 1: checkpoints written before the key existed. NumPy's RNG state is a tuple holding a uint32
  ``ndarray``; `load` reads exactly that (NumPy's array reconstructor, ``ndarray`` and the uint32
  dtype are allowed for version-1 files only: they build arrays and run nothing else) and
  converts the RNG states to plain data; the rest is returned as written, with no ``format``
  key, so the search and the retrainer can upgrade their own layout.
* 2 (`FORMAT`): every RNG state as plain data (`rng_state`).

A file of a version outside ``OLDEST_FORMAT..FORMAT`` is refused with a message naming it.
`save` always writes `FORMAT`: bump it (and teach `load` the old one) when the layout changes.
"""

from __future__ import annotations

import pickle
import random
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasviz.io import atomic_write

#: The checkpoint format this code writes.
FORMAT = 2
#: The oldest format this code still reads (1 = written before the ``format`` key existed).
OLDEST_FORMAT = 1


def save(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (plus ``format``) atomically: a crash mid-write keeps the previous file."""
    state = {**state, "format": FORMAT}
    return atomic_write(Path(path), lambda f: torch.save(state, f))


def load(
    path: str | Path, *, kind: str, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by `save` as data; a missing, corrupt, unsafe or foreign file,
    or one of another format version, gets a clear error (ValueError / FileNotFoundError)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; nothing to resume (run without --resume first)"
        )
    state = _read(path, map_location)
    if not isinstance(state, dict) or not isinstance(state.get("kind"), str):
        raise ValueError(
            f"{path} is not a nasviz checkpoint (it holds a {type(state).__name__} without a "
            "'kind' entry)"
        )
    version = _check_format(path, state)
    if state["kind"] != kind:
        raise ValueError(
            f"checkpoint {path} is not a nasviz {kind} checkpoint (found {state['kind']!r})"
        )
    if version == 1:
        state = _upgrade_v1(path, state)
    return state


def _read(path: Path, map_location: str | torch.device) -> Any:
    """torch.load with weights_only=True; NumPy arrays are allowed only for version-1 files."""
    try:
        return _torch_load(path, map_location)
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_global(exc)
        if unsafe is None:
            raise _corrupt(path, exc) from exc
        if unsafe not in _NUMPY_V1_GLOBALS:
            raise _unsafe(path, unsafe) from None
    except Exception as exc:  # torch raises many types for truncated or garbled files
        raise _corrupt(path, exc) from exc
    # A version-1 checkpoint: NumPy's RNG state was pickled as an ndarray.
    try:
        with torch.serialization.safe_globals(_numpy_v1_allowed()):
            state = _torch_load(path, map_location)
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_global(exc)
        if unsafe is None:
            raise _corrupt(path, exc) from exc
        raise _unsafe(path, unsafe) from None
    except Exception as exc:
        raise _corrupt(path, exc) from exc
    if isinstance(state, dict) and "format" in state:
        # Only files written before the format key may hold arrays; ours never do since.
        raise _unsafe(path, "numpy.ndarray (allowed only in version-1 checkpoints)")
    return state


def _torch_load(path: Path, map_location: str | torch.device) -> Any:
    with warnings.catch_warnings():  # old-protocol pickles: torch warns, then reads or refuses
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(path, map_location=map_location, weights_only=True)


#: What a version-1 checkpoint's NumPy RNG state needs (NumPy 1 and 2 module names).
_NUMPY_V1_GLOBALS = {
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.dtypes.UInt32DType",
}


def _numpy_v1_allowed() -> list[Any]:
    """The NumPy globals of `_NUMPY_V1_GLOBALS`, under both of their module names."""
    try:
        reconstruct = np._core.multiarray._reconstruct  # NumPy 2
    except AttributeError:  # pragma: no cover - NumPy 1
        reconstruct = np.core.multiarray._reconstruct
    return [
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (reconstruct, "numpy._core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        type(np.dtype(np.uint32)),
    ]


# What torch's weights_only unpickler names when a file asks for something other than data.
_FORBIDDEN = re.compile(
    r"GLOBAL ([\w.]+) (?:was not an allowed|whose module)|unrecognized function (\S+)"
    r"|but got <class '([\w.]+)'>"
)


def _unsafe_global(exc: BaseException) -> str | None:
    """The forbidden global a weights_only load stopped at, or None when the file is broken."""
    m = _FORBIDDEN.search(str(exc))
    return next(g for g in m.groups() if g) if m else None


def _unsafe(path: Path, what: str) -> ValueError:
    return ValueError(
        f"{path} is not a safe nasviz checkpoint: it asks to build {what}, which is not data "
        "(tensors, numbers, strings, lists, dicts); it was not loaded and none of its code ran. "
        "Resume only from checkpoints written by nasviz"
    )


def _corrupt(path: Path, exc: BaseException) -> ValueError:
    text = str(exc)
    if "WeightsUnpickler error:" in text:  # skip torch's generic advice, keep the reason
        text = text.split("WeightsUnpickler error:", 1)[1]
    reason = text.strip().splitlines()[0][:200] if text.strip() else ""
    return ValueError(
        f"{path} is not a readable nasviz checkpoint (corrupt, truncated or not written by "
        f"nasviz; {type(exc).__name__}: {reason}); nothing in it ran and it was not modified: "
        "delete it to start over, or restore a copy"
    )


def _check_format(path: Path, state: dict[str, Any]) -> int:
    """The format version of ``state`` (missing = 1), refusing ones this code cannot read."""
    version = state.get("format", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"checkpoint {path} has an invalid format version {version!r}")
    if version > FORMAT:
        raise ValueError(
            f"checkpoint {path} was written by a newer nasviz (checkpoint format {version}); "
            f"this nasviz reads formats {OLDEST_FORMAT} to {FORMAT}: upgrade nasviz to resume it"
        )
    if version < OLDEST_FORMAT:
        raise ValueError(
            f"checkpoint {path} was written by an older nasviz (checkpoint format {version}); "
            f"this nasviz reads formats {OLDEST_FORMAT} to {FORMAT}: resume it with the nasviz "
            "version that wrote it, or start a new run"
        )
    return version


def _upgrade_v1(path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Version 1's RNG states (Python tuple, NumPy tuple with an ndarray) as plain data.

    The rest is left as written, ``format`` still missing, for the caller's own layout upgrade.
    """
    state = dict(state)
    if "rng" in state:
        try:
            state["rng"] = _plain_rng(state["rng"])
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"checkpoint {path} (format 1) has an unreadable RNG state") from exc
    return state


def check_resume_config(
    saved: dict[str, Any], asked: dict[str, Any], may_differ: Iterable[str]
) -> None:
    """Refuse to resume when the asked config differs from the checkpoint's (naming each field)."""
    may_differ = set(may_differ)
    differ = [
        f"{k}: checkpoint {saved.get(k)!r} vs asked {asked.get(k)!r}"
        for k in sorted(set(saved) | set(asked))
        if k not in may_differ and saved.get(k) != asked.get(k)
    ]
    if differ:
        raise ValueError(
            f"cannot resume with a different configuration ({'; '.join(differ)}); only "
            f"{', '.join(sorted(may_differ))} may differ: resume with the checkpoint's settings "
            "or start a new run in another directory"
        )


# ------------------------------------------------------------------------------ RNG states
def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA random states, as plain data (weights_only loads it)."""
    version, internal, gauss_next = random.getstate()
    bit_generator, key, pos, has_gauss, cached_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {
            "bit_generator": str(bit_generator),
            # MT19937 key: 624 uint32 words, held in int64 so every torch version stores them.
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _plain_rng(state: dict[str, Any]) -> dict[str, Any]:
    """`rng_state`'s layout from either it or the version-1 one (tuples as the libraries give)."""
    state = dict(state)
    py = state["python"]
    if isinstance(py, (tuple, list)):
        version, internal, gauss_next = py
        state["python"] = {"version": version, "internal": list(internal), "gauss_next": gauss_next}
    npy = state["numpy"]
    if isinstance(npy, (tuple, list)):
        bit_generator, key, pos, has_gauss, cached_gauss = npy
        state["numpy"] = {
            "bit_generator": str(bit_generator),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gauss),
        }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned (the version-1 tuple layout is accepted too)."""
    state = _plain_rng(state)
    py, npy = state["python"], state["numpy"]
    random.setstate((int(py["version"]), tuple(int(i) for i in py["internal"]), py["gauss_next"]))
    key = torch.as_tensor(npy["key"]).numpy().astype(np.uint32)
    np.random.set_state(
        (npy["bit_generator"], key, int(npy["pos"]), int(npy["has_gauss"]),
         float(npy["cached_gaussian"]))
    )  # fmt: skip
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
