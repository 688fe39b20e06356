"""The training loop: pinned seeded losses, resume after SIGKILL, two gloo ranks = one process,
non-finite loss, atomic checkpoints."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import random_batch, tiny_overrides
from synclipmae.config import build_config
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.weights import latest_checkpoint
from synclipmae.train.log import read_metrics
from synclipmae.train.loop import TrainingError, pretrain


class RandomSource:
    """A tiny deterministic stand-in for a ClipBank: batch = f(seed, step, rank)."""

    def __init__(self, nan_at: int | None = None, crash_at: int | None = None):
        self.nan_at, self.crash_at = nan_at, crash_at

    def sample(self, seed, step, batch_size, T, rank=0, world=1):
        if step == self.crash_at:
            raise KeyboardInterrupt("simulated crash")
        full = random_batch(B=batch_size * world, T=T, seed=seed * 1000 + step)
        batch = {k: v[rank * batch_size:(rank + 1) * batch_size] for k, v in full.items()}
        if self.nan_at is not None and step == self.nan_at:
            batch["audio"] = batch["audio"] * float("nan")
        return batch


def cfg_for(out: Path, steps: int = 6, **train):
    return build_config(overrides=tiny_overrides(
        data={"frames": 4}, train={"out": str(out), "steps": steps, "batch_size": 2, "ckpt_every": 3,
                                   "log_every": 1, "progress": False, "warmup": 0.2, **train}))


def losses(out: Path) -> list[float]:
    return [row["loss"] for row in read_metrics(out)]


def test_five_seeded_steps_give_a_pinned_loss(tmp_path):
    pretrain(cfg_for(tmp_path / "a", steps=5), source=RandomSource())
    pretrain(cfg_for(tmp_path / "b", steps=5), source=RandomSource())
    first, second = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert first == second  # bit-for-bit reproducible from the seed
    assert first[-1] == pytest.approx(8.4183, abs=1e-3)  # pinned: changes to the model or loss show up here


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    pretrain(cfg_for(tmp_path / "full"), source=RandomSource())
    with pytest.raises(KeyboardInterrupt):  # dies after the step-3 checkpoint
        pretrain(cfg_for(tmp_path / "part"), source=RandomSource(crash_at=4))
    pretrain(cfg_for(tmp_path / "part"), source=RandomSource())           # same out: resumes at step 3
    assert losses(tmp_path / "part") == losses(tmp_path / "full")
    assert [r["step"] for r in read_metrics(tmp_path / "part")] == list(range(1, 7))


def test_a_step_floor_trains_past_the_minutes_and_runs_the_schedule_on_steps(tmp_path):
    # 0.0001 minutes is over after the first step: a floor of 70000 steps per minute makes it 7, and the
    # learning rate still warms up and decays over those 7 steps rather than sitting at min_lr after the first
    out = tmp_path / "floor"
    pretrain(cfg_for(out, minutes=0.0001, min_steps_per_minute=70000), source=RandomSource())
    assert latest_checkpoint(out).name == "step_0000007"
    lrs = [row["lr"] for row in read_metrics(out)]
    assert len(lrs) == 7 and 0 < lrs.index(max(lrs)) < 6 and lrs[-1] < 0.5 * max(lrs)


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(TrainingError, match=r"non-finite loss .* at step 4 \(batch: random/0"):
        pretrain(cfg_for(tmp_path), source=RandomSource(nan_at=4))
    good = latest_checkpoint(tmp_path)
    assert good.name == "step_0000003"
    SyncLipMAE.from_pretrained(good)  # intact and loadable


def test_checkpoints_are_complete_and_pruned(tmp_path):
    final = pretrain(cfg_for(tmp_path, steps=7), source=RandomSource())
    assert final.name == "step_0000007" and latest_checkpoint(tmp_path) == final
    assert {p.name for p in (tmp_path / "checkpoints").iterdir()} == {"latest", "step_0000006", "step_0000007"}
    assert {p.name for p in final.iterdir()} == {"config.json", "model.safetensors", "train_state.pt"}
    torch.load(final / "train_state.pt", weights_only=True)


# ---------------------------------------------------------------------------------------------
# the CLI under SIGKILL, and two gloo processes


def _cli(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "synclipmae", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


TINY_CLI = ["model.img_size=32", "model.width=32", "model.depth=2", "model.heads=2", "model.dec_width=32",
            "model.dec_depth=1", "model.dec_heads=2", "model.proj_dim=16", "model.audio.width=32",
            "model.audio.depth=1", "model.audio.heads=2", "data.clips=6", "data.seconds=1", "data.frames=4",
            "train.batch_size=2", "train.log_every=1", "train.progress=false"]


def test_sigkilled_pretrain_resumes_to_the_same_losses(tmp_path):
    steps = ["train.steps=40", "train.ckpt_every=10"]
    full = _cli("pretrain", f"train.out={tmp_path / 'full'}", *TINY_CLI, *steps)
    assert full.wait(timeout=240) == 0, full.stderr.read()
    killed = _cli("pretrain", f"train.out={tmp_path / 'run'}", *TINY_CLI, *steps)
    deadline = time.time() + 240
    while latest_checkpoint(tmp_path / "run") is None and time.time() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    interrupted_at = latest_checkpoint(tmp_path / "run")
    assert interrupted_at is not None and interrupted_at.name != "step_0000040", "the run finished before the kill"
    again = _cli("pretrain", f"train.out={tmp_path / 'run'}", *TINY_CLI, *steps)
    assert again.wait(timeout=240) == 0, again.stderr.read()
    assert losses(tmp_path / "run") == losses(tmp_path / "full")


def test_usage_errors_are_one_line_with_exit_2(tmp_path):
    for args, expect in [(["pretrain", "train.lrr=1"], "did you mean 'train.lr'"),
                         (["pretrain", "--config", str(tmp_path / "missing.yaml")], "config file not found"),
                         (["pretrain", "train.steps=abc"], "needs an integer"),
                         (["pretrain", "model.variant=mae"], "must be one of"),
                         (["demo", "--out", str(tmp_path / "demo"), "mask.ratio_aa=0.9"], "did you mean 'mask.ratio_a'")]:
        proc = _cli(*args)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, (args, err)
        assert expect in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "demo").exists()  # the demo checks its overrides before any work


GLOO_WORKER = r'''
import os, sys, torch, torch.distributed as dist
sys.path.insert(0, os.environ["TESTS_DIR"])
from conftest import random_batch, tiny_overrides
from synclipmae.config import build_config
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae import dist as d
world = int(os.environ.get("WORLD_SIZE", 1))
if world > 1:
    d.setup()
torch.manual_seed(0)
model = SyncLipMAE(build_config(overrides=tiny_overrides()))
if world > 1:
    model = torch.nn.parallel.DistributedDataParallel(model)
full = random_batch(B=4, T=4, seed=5)
r = d.rank()
n = 4 // world
batch = {k: v[r * n:(r + 1) * n] for k, v in full.items()}
model(batch)["loss"].backward()
if r == 0:
    inner = model.module if world > 1 else model
    torch.save({k: p.grad for k, p in inner.named_parameters()}, os.environ["OUT"])
d.cleanup()
'''


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_give_the_gradients_of_one(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(GLOO_WORKER)
    base = {**os.environ, "TESTS_DIR": str(Path(__file__).parent), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    one = subprocess.run([sys.executable, str(script)], env={**base, "OUT": str(tmp_path / "one.pt")},
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    for attempt in range(2):  # a second try with a new port: the free port can be taken before torchrun binds it
        two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                              f"--master_port={_free_port()}", str(script)], env={**base, "OUT": str(tmp_path / "two.pt")},
                             capture_output=True, text=True, timeout=180)
        if two.returncode == 0:
            break
    assert two.returncode == 0, two.stderr[:3000]  # the ranks' own tracebacks come first
    g1, g2 = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert g1.keys() == g2.keys()
    scale = max(float(g.abs().max()) for g in g1.values())  # (centring makes some grads ~0: compare on one scale)
    for k in g1:
        assert float((g1[k] - g2[k]).abs().max()) < 1e-4 * scale, k
    assert float(g1["proj_v.weight"].abs().max()) > 1e-3 * scale  # the contrastive path is really compared


def test_demo_config_takes_overrides_but_keeps_its_own_run_fields(tmp_path):
    from synclipmae.demo import demo_config

    cfg = demo_config(tmp_path, 2.0, 7, "mae-only", ["mask.ratio_a=0.9", "train.seed=1", "model.variant=syncnet-style"])
    assert cfg.mask.ratio_a == 0.9 and cfg.loss.rec_frames == 4   # the override and the demo's recipe
    assert (cfg.train.seed, cfg.model.variant, cfg.train.minutes) == (7, "mae-only", 2.0)
    assert cfg.train.out == str(tmp_path / "runs" / "mae-only")
