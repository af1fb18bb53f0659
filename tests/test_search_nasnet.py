"""Tests for nasviz.search.nasnet: the NASNet search on the engine (controller, children, PPO)."""

from __future__ import annotations

import math
import shutil
import socket
import sys
import time

import pytest
import torch

from nasviz import cli
from nasviz.data import synthetic_dataset
from nasviz.history import SearchHistory
from nasviz.search import children, create_search, preset, registry
from nasviz.search.config import ConfigError
from nasviz.search.nasnet import NasnetConfig, NasnetSearch, random_genotypes, score_genotypes
from nasviz.spaces.nasnet import OPS, NasnetGenotype, NasnetSpace
from nasviz.viz import evolution
from nasviz.viz import nasnet as viz_nasnet


def _cfg(**kw) -> NasnetConfig:
    """Two updates of two tiny children (C=4, one cell per stage, two steps), one thread."""
    values = dict(device="cpu", threads=1, epochs=2, updates_per_epoch=1, children=2)
    return preset("nasnet", "smoke", **{**values, **kw})


@pytest.fixture
def train_data():
    return synthetic_dataset("digits", 40, seed=0)


@pytest.fixture
def fake_digits(monkeypatch):
    """The children's dataset loader replaced by tiny synthetic digits; records the splits."""
    asked = []

    def load(name, split="train", root="data", download=False):
        asked.append(split)
        return synthetic_dataset(name, 40, seed=0 if split == "train" else 1)

    monkeypatch.setattr(children, "load_dataset", load)
    children.validation_split.cache_clear()
    yield asked
    children.validation_split.cache_clear()


# ------------------------------------------------------------------------------ config
def test_presets_and_paper_defaults():
    paper = preset("nasnet", "paper")
    assert (paper.algorithm, paper.controller_lr, paper.entropy_weight) == ("ppo", 3.5e-4, 1e-5)
    assert paper.baseline_decay == 0.95 and paper.controller_hidden == 100
    assert (paper.child_cells_per_stage, paper.child_epochs, paper.dataset) == (2, 20, "cifar10")
    assert paper.epochs * paper.updates_per_epoch * paper.children == 20_000  # ~20,000 children
    quick = preset("nasnet", "quick")
    assert quick.dataset == "digits" and quick.workers == 0
    child = quick.child_config()
    assert (child.cells_per_stage, child.C, child.epochs) == (1, 8, 2)
    assert child.batch_size == quick.batch_size and child.val_portion == quick.val_portion
    policy = paper.policy_config()
    assert (policy.lr, policy.baseline_decay, policy.algorithm) == (3.5e-4, 0.95, "ppo")


def test_config_errors(monkeypatch):
    with pytest.raises(ConfigError, match="ray_address .* workers >= 1"):
        preset("nasnet", "smoke", ray_address="10.0.0.5:6379")
    with pytest.raises(ConfigError, match="algorithm"):
        preset("nasnet", "smoke", algorithm="evolution")
    with pytest.raises(ConfigError, match="children"):
        preset("nasnet", "smoke", children=0)
    config = preset("nasnet", "smoke", workers=2)  # a Ray run's config reads back without Ray
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert NasnetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r'pip install "nasviz\[ray\]"'):
        NasnetSearch(config)


def test_cli_flags_reach_the_config(monkeypatch):
    args = cli.build_parser().parse_args(
        ["search", "nasnet", "--algorithm", "reinforce", "--children", "3", "--workers", "0",
         "--out", "x"]
    )  # fmt: skip
    given = cli.search_overrides(args)
    assert given == {"algorithm": "reinforce", "children": 3, "workers": 0}
    entry = registry.get("nasnet")
    assert {c.field for c in entry.controls} == {
        "controller_lr", "entropy_weight", "baseline_decay", "children", "workers"
    }  # fmt: skip


def test_cli_ray_missing_is_one_clear_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = cli.main(["search", "nasnet", "--preset", "smoke", "--workers", "2",
                     "--out", str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and 'pip install "nasviz[ray]"' in err and "Traceback" not in err


def test_bad_ray_address_fails_within_seconds(train_data):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(ValueError, match="no Ray cluster answers"):
        NasnetSearch(_cfg(workers=1, ray_address=f"127.0.0.1:{port}"), train_data=train_data)
    assert time.perf_counter() - start < 15


# ------------------------------------------------------------------------------ the search
def test_search_rewards_history_and_derive(fake_digits, tmp_path):
    search = NasnetSearch(_cfg(), tmp_path / "run")
    result = search.run(progress=False)
    assert set(fake_digits) == {"train"}  # the rewards never touched the test split
    h = result.history
    steps = h.select("step")
    assert len(steps) == 2  # one record per controller update
    rewards = search.rewards()
    assert len(rewards) == 4 and all(0.0 <= r <= 1.0 for r in rewards)
    for rec, batch in zip(steps, (rewards[:2], rewards[2:]), strict=True):
        assert rec["metrics"]["reward_mean"] == pytest.approx(sum(batch) / 2)
        assert rec["extra"]["reward_max"] == pytest.approx(max(batch))
    # the baseline of the first update is its mean reward, then the moving average (decay 0.95)
    assert steps[0]["extra"]["baseline"] == pytest.approx(sum(rewards[:2]) / 2)
    b = sum(rewards[:2]) / 2
    for r in rewards[:2]:
        b = 0.95 * b + 0.05 * r
    assert steps[1]["extra"]["baseline"] == pytest.approx(b)
    ent = steps[0]["extra"]["entropy"]
    assert 0 < ent < 40 * math.log(13) + 10 * math.log(6) + 10 * math.log(2)
    # groups: op choice per block slot (13 ops), inputs (NaN where a block cannot read), combine
    assert h.group_spec("op/normal")["cols"] == list(OPS)
    assert len(h.group_spec("op/reduce")["rows"]) == 10
    assert h.group_spec("combine/normal")["cols"] == ["add", "concat"]
    _, inputs = h.group_series("input/normal")
    assert inputs.shape == (3, 10, 6)
    assert torch.isnan(torch.as_tensor(inputs[-1, 0, 2:])).all()  # block 0 reads h_{i-1}, h_i
    assert not torch.isnan(torch.as_tensor(inputs[-1, -1])).any()  # block 4 reads all 6 states
    assert inputs[-1, 0, :2].sum() == pytest.approx(1.0, abs=1e-5)
    # derive: the best-reward child; the epoch records list the best cells, best first
    top = search.top_cells()
    assert top[0]["reward"] == max(rewards)
    assert [c["reward"] for c in top] == sorted((c["reward"] for c in top), reverse=True)
    assert result.architecture == NasnetGenotype.from_dict(top[0]["architecture"])
    assert h.epochs()[-1]["extra"]["top_cells"][0]["reward"] == max(rewards)
    assert h.epochs()[-1]["metrics"]["children"] == 4
    # before any child the derived cell is the controller's greedy one
    assert "reward_mean" not in h.epochs()[0].get("extra", {})
    saved = SearchHistory.load(tmp_path / "run")
    assert saved.select("step")[1]["extra"] == steps[1]["extra"]


def test_controller_learns_from_rewards_reinforce(train_data):
    """REINFORCE: the log-probability of the better of two children rises after the update."""
    search = NasnetSearch(
        _cfg(algorithm="reinforce", controller_lr=0.05, epochs=1), train_data=train_data
    )
    gen_state = search.generator.get_state()
    search.run(progress=False)
    rewards = search.rewards()
    assert rewards[0] != rewards[1]
    search.generator.set_state(gen_state)  # the same two samples again
    again = search.controller.sample(2, generator=search.generator)
    best = max(range(2), key=lambda i: rewards[i])
    worst = 1 - best
    logp_now, _ = search.controller.evaluate(again.actions)
    fresh = NasnetSearch(_cfg(algorithm="reinforce", epochs=1), train_data=train_data)
    logp_before, _ = fresh.controller.evaluate(again.actions)
    gain = logp_now.sum(1) - logp_before.sum(1)
    assert gain[best] > gain[worst]


def test_duplicate_samples_reuse_the_cached_reward(train_data):
    search = NasnetSearch(_cfg(children=3, epochs=1), train_data=train_data)
    with torch.no_grad():  # a controller sure of every decision samples one genotype 3 times
        for head in search.controller.heads.values():
            head.weight.zero_()
            head.bias.fill_(-50.0)
            head.bias[0] = 50.0
    calls = []
    fn = search.job_fn
    search.job_fn = lambda job: calls.append(job) or fn(job)
    search.run(progress=False)
    assert len(calls) == 1 and len(set(search.rewards())) == 1
    assert search.history.select("step")[0]["metrics"]["cache_hits"] == 2
    # scored apart (random-search comparisons), the same genotype gets the same reward
    again = score_genotypes(search.config, [search.derive()], train_data=train_data)
    assert again == search.rewards()[:1]


def test_step_records_hold_each_decisions_log_prob_and_entropy(train_data):
    """Per update, per decision (the space's order): mean log-prob and entropy over the samples."""
    search = NasnetSearch(_cfg(children=3, epochs=2), train_data=train_data)
    search.run(progress=False)
    steps = search.history.select("step")
    assert len(steps) == 2
    n = len(search.config.space().decisions())
    for record in steps:
        d = record["extra"]["decisions"]
        assert len(d["log_prob"]) == len(d["entropy"]) == n
        assert all(lp <= 0 for lp in d["log_prob"]) and all(e >= 0 for e in d["entropy"])
        # the summed entropy the history plots is the sum of the per-decision ones
        assert sum(d["entropy"]) == pytest.approx(record["extra"]["entropy"], rel=1e-5)


def test_images_per_second_counts_the_images_of_the_children_trained(train_data):
    """Not children per second: images of trained children; a cached duplicate trains none."""
    search = NasnetSearch(_cfg(children=3, epochs=1), train_data=train_data)
    with torch.no_grad():  # one genotype sampled 3 times: 1 child trained, 2 cache hits
        for head in search.controller.heads.values():
            head.weight.zero_()
            head.bias.fill_(-50.0)
            head.bias[0] = 50.0
    search.run(progress=False)
    epoch = search.history.select("epoch")[-1]["metrics"]
    cfg = search.config
    per_child = cfg.child_epochs * min(-(-20 // cfg.batch_size), cfg.child_max_steps or 10**9)
    per_child *= cfg.batch_size  # 20 of the 40 images train the child, the rest score it
    assert search.images_per_iteration() == 3 * per_child
    assert epoch["images_per_second"] * epoch["seconds"] == pytest.approx(per_child)


def test_random_genotypes_are_valid_and_seeded():
    space = NasnetSpace()
    a, b = random_genotypes(space, 3, seed=4), random_genotypes(space, 3, seed=4)
    assert a == b and len({repr(g) for g in a}) == 3
    assert all(space.decode(space.encode(g)) == g for g in a)


def test_resume_after_an_interruption_equals_a_straight_run(train_data, tmp_path):
    straight = create_search(_cfg(epochs=3), tmp_path / "a", train_data=train_data)
    straight.run(progress=False)

    def stop(history, record):
        if record["epoch"] == 1:
            raise RuntimeError("interrupted")

    first = create_search(_cfg(epochs=3), tmp_path / "b", train_data=train_data)
    with pytest.raises(RuntimeError, match="interrupted"):
        first.run(progress=False, callbacks=[stop])
    resumed = create_search(_cfg(epochs=3), tmp_path / "b", resume=True, train_data=train_data)
    assert resumed.epoch == 1
    assert len(resumed.executor().cache) == 2  # the reward cache came back
    resumed.run(progress=False)
    assert resumed.rewards() == straight.rewards()
    for a, b in zip(
        resumed.controller.state_dict().values(), straight.controller.state_dict().values(),
        strict=True,
    ):  # fmt: skip
        assert torch.equal(a, b)
    assert resumed.updater.baseline.value == straight.updater.baseline.value
    ra, rb = resumed.history.select("step"), straight.history.select("step")
    assert [r["extra"] for r in ra] == [r["extra"] for r in rb]
    assert resumed.derive() == straight.derive()


def test_nasviz_plot_draws_rewards_and_top_cells(fake_digits, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert cli.main(["search", "nasnet", "--preset", "smoke", "--device", "cpu", "--threads",
                     "1", "--children", "2", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    history = SearchHistory.load(out)
    names = evolution.available_plots(history)
    assert {"extra", "op_normal", "heatmap_input_reduce", "combine_normal", "entropy"} <= set(names)
    # the shared plots read the NASNet groups; two of them drawn here (all of them take a minute)
    full = evolution.available_plots
    monkeypatch.setattr(
        evolution, "available_plots",
        lambda h: {k: v for k, v in full(h).items() if k in ("extra", "op_normal")},
    )  # fmt: skip
    capsys.readouterr()
    assert cli.main(["plot", str(out)]) == 0
    written = capsys.readouterr().out
    assert "nasnet_rewards.png" in written and "extra.png" in written
    assert "op_normal.png" in written
    if shutil.which("dot"):
        assert "nasnet_top1.png" in written and "architecture.png" in written
    rewards = [r for r, _ in viz_nasnet.top_cells(history)]
    assert rewards[0] == max(c["reward"] for c in history.epochs()[-1]["extra"]["top_cells"])


# ------------------------------------------------------------------------------ Ray
def _tiny_ray_children(train_data):
    """A NASNet search with workers=2 on the local Ray (2 CPUs) and the same one in process."""
    ray = pytest.importorskip("ray")
    from nasviz.search.executor import RayExecutor

    here = NasnetSearch(_cfg(epochs=1), train_data=train_data)
    here.run(progress=False)
    for attempt in range(2):  # as `--workers 2` starts it locally
        try:
            owner = RayExecutor(2, init_kwargs={"num_cpus": 2})
            break
        except RuntimeError as exc:  # Ray waits a fixed 30 s for its raylet: a busy machine
            if attempt or "timed out during startup" not in str(exc):
                raise
            ray.shutdown()
    try:
        there = NasnetSearch(_cfg(epochs=1, workers=2), train_data=train_data)
        there.run(progress=False)
        assert ray.is_initialized()  # the search joined the Ray it did not start
    finally:
        owner.close()
    return here, there


def test_ray_workers_give_the_same_rewards_as_in_process(train_data):
    here, there = _tiny_ray_children(train_data)
    assert there.rewards() == here.rewards()
    assert there.derive() == here.derive()
    for a, b in zip(
        there.controller.parameters(), here.controller.parameters(), strict=True
    ):  # fmt: skip
        assert torch.equal(a, b)


def test_cli_resume_after_sigkill_equals_a_straight_run(tmp_path):
    """`nasviz search nasnet` killed (SIGKILL) after a checkpoint; `--resume` ends where a straight
    run ends: the same rewards per update and the same derived cell."""
    import json
    import os
    import signal
    import subprocess

    args = ["search", "nasnet", "--preset", "smoke", "--epochs", "4", "--no-progress"]
    env = {**os.environ, "NASVIZ_THREADS": "1"}

    def nasviz(*extra: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "nasviz", *args, *extra]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    killed = tmp_path / "killed"
    proc = nasviz("--out", str(killed))
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint.pt").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the search finished before it could be killed"
    # the checkpoint is renamed into place before history.json is written: read the epoch from it
    from nasviz import checkpoint

    epochs_kept = checkpoint.load(killed / "checkpoint.pt", kind="search")["epoch"]
    assert 1 <= epochs_kept < 4

    straight = tmp_path / "straight"
    for p in (nasviz("--out", str(killed), "--resume"), nasviz("--out", str(straight))):
        assert p.wait(timeout=600) == 0, p.stderr.read().decode()

    def rewards(run):
        return [
            r["metrics"]["reward_mean"]
            for r in SearchHistory.load(run / "history.json").select("step")
        ]

    assert len(rewards(straight)) == 4 and rewards(killed) == rewards(straight)
    genotype = json.loads((straight / "genotype.json").read_text())
    assert json.loads((killed / "genotype.json").read_text()) == genotype
