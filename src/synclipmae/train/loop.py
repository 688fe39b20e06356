"""One training loop for every trained module, on a laptop CPU or many GPUs (DESIGN §8).

`fit` is the loop: a module whose forward takes a batch and returns a loss dict ({"loss": ..., **terms}),
an optimiser, a `Budget` (steps and/or wall-clock seconds) and the one warm-up + cosine schedule
(`optim.lr_at`); it stops on a non-finite loss (`check_finite`), logs scalar terms and writes atomic
checkpoints (`train/checkpoint.py`). Pretraining (`pretrain`, below), the dubber's fine-tune
(`train/dubber.py`) and the lip-reading head (`tasks/vsr.py`) all train through it.

`python -m synclipmae pretrain ...` runs pretraining on one process; `torchrun --nproc_per_node=G -m synclipmae
pretrain ...` runs the same code with DDP (or FSDP2 with `train.strategy=fsdp`). bf16 autocast only on
CUDA (`nullcontext` on CPU). The schedule runs on steps, or on elapsed wall time when
`train.minutes > 0`; `train.min_steps_per_minute` then sets a floor of steps: training goes on past the
minutes until it has them, and the schedule follows whichever of time and steps is further behind.
Re-running the same command resumes from the last checkpoint in `train.out`.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from synclipmae import dist
from synclipmae.config import Config, config_json
from synclipmae.data.augment import AugmentedSource
from synclipmae.data.clips import MixedSource, synthtalk_bank
from synclipmae.data.shards import ShardError, ShardSource
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.train.checkpoint import latest_checkpoint, resume, save_checkpoint
from synclipmae.train.log import MetricLogger
from synclipmae.train.optim import build_optimizer, lr_at, set_lr
from synclipmae.weights import load_weights, resolve_checkpoint


class TrainingError(RuntimeError):
    """A one-line reason training stopped (non-finite loss, bad data)."""


def build_source(cfg: Config, progress: bool = True):
    """The training data named by cfg.data: generated SynthTalk clips, or `prepare` shards with a share
    of SynthTalk steps mixed in (`data.synth_share`); augmented when `augment.prob` > 0."""
    source = _synthtalk(cfg, progress) if cfg.data.source == "synthtalk" else _shards(cfg)
    if cfg.data.source != "synthtalk" and cfg.data.synth_share > 0:
        source = MixedSource(source, _synthtalk(cfg, progress), cfg.data.synth_share)
    return AugmentedSource(source, cfg.augment) if cfg.augment.prob > 0 else source


def _synthtalk(cfg: Config, progress: bool):
    return synthtalk_bank(cfg.data.clips, cfg.data.seconds, cfg.train.seed, cfg.model.img_size,
                          identities=cfg.data.identities, workers=max(1, cfg.data.workers),
                          progress=progress and dist.is_main())


def _shards(cfg: Config):
    try:  # a folder, glob or .tar of `synclipmae prepare` shards
        source = ShardSource.from_spec(cfg.data.source, workers=cfg.data.workers)
    except ShardError as err:
        raise TrainingError(f"data.source: {err} (or 'synthtalk' for generated clips)") from None
    if source.size != cfg.model.img_size:
        raise TrainingError(f"data.source '{cfg.data.source}' holds {source.size}px clips but model.img_size is "
                            f"{cfg.model.img_size} (run prepare with --size {cfg.model.img_size})")
    if source.clip_frames < cfg.data.frames:
        raise TrainingError(f"data.source '{cfg.data.source}' holds clips of {source.clip_frames} frames but "
                            f"data.frames is {cfg.data.frames} (run prepare with --clip-frames {cfg.data.frames} or more)")
    return source


def init_checkpoint(spec: str) -> Path:
    """`train.init`: a checkpoint folder, a run folder (its latest checkpoint) or shipped weights by name."""
    try:
        return resolve_checkpoint(spec)
    except FileNotFoundError as err:
        raise TrainingError(f"train.init: {err}") from None


def _wrap(model: torch.nn.Module, cfg: Config, device: torch.device) -> torch.nn.Module:
    if not dist.is_distributed():
        return model
    if cfg.train.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in list(model.blocks) + list(getattr(model, "dec_blocks", [])):
            fully_shard(block)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _unwrap(model: torch.nn.Module) -> SyncLipMAE:
    return model.module if hasattr(model, "module") else model


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


@dataclass
class Budget:
    """When a run stops, and how far along its schedule it is (the `progress` the LR follows)."""
    steps: int = 0          # > 0: stop after this many steps
    seconds: float = 0.0    # > 0: stop after this much training time ...
    min_steps: int = 0      # ... unless fewer steps than this are done (pretraining's step floor)
    ahead: bool = False     # progress = the further ahead of steps and time (else the further behind)

    def progress(self, step: int, elapsed: float) -> float:
        if self.seconds <= 0:
            return step / max(self.steps, 1)
        if self.ahead:
            return max(step / max(self.steps, 1) if self.steps else 0.0, elapsed / self.seconds)
        return min(1.0, elapsed / self.seconds, step / self.min_steps if self.min_steps else 1.0)

    def running(self, step: int, elapsed: float) -> bool:
        if self.ahead:
            return self.progress(step, elapsed) < 1
        by_steps = self.steps <= 0 or step < self.steps
        return by_steps if self.seconds <= 0 else by_steps and (elapsed < self.seconds or step < self.min_steps)


def check_finite(loss: torch.Tensor, step: int, batch: dict, last_good=None) -> None:
    """The one non-finite guard: a TrainingError naming the step, the batch's sources and the last
    good checkpoint (when the run writes them)."""
    if not torch.isfinite(loss).all():
        where = f"; last good checkpoint: {last_good or 'none'}" if last_good is not False else ""
        names = ", ".join(batch["source"])
        raise TrainingError(f"non-finite loss {loss.item()} at step {step} (batch: {names}){where}")


def fit(net: torch.nn.Module, optimizer: torch.optim.Optimizer, sample: Callable[[int], dict], budget: Budget,
        lr: Callable[[float], float], grad_clip: float, step: int = 0, elapsed: float = 0.0, log_every: int = 1,
        logger: MetricLogger | None = None, on_log=None, save_every: int = 0, save=None, last_good=None,
        autocast=None, bar: dict | None = None) -> tuple[int, float, dict]:
    """Train `net` from `step` (`elapsed` seconds already spent) until `budget` is spent.

    Each step: the learning rate `lr(progress)`, `batch = sample(step)` (a dict with "source": the
    names of its rows), `net(batch)` -> {"loss": ..., **terms}, the non-finite guard, backward, the
    gradient norm clipped to `grad_clip`, an optimiser step. Every `log_every` steps (and the first)
    the scalar terms (mean over ranks), lr, grad_norm and elapsed go to `logger` and `on_log(step,
    metrics)`; every `save_every` steps `save(step, elapsed)` writes a checkpoint. `last_good()` names the last
    good checkpoint in the guard's message (False: the run writes none). bar: tqdm settings (desc,
    disable, leave): steps, or seconds with a time budget. Returns (step, elapsed, the last step's
    loss dict)."""
    autocast = autocast if autocast is not None else nullcontext()
    timed = budget.seconds > 0
    bar_cfg = {"desc": "train", "disable": True, **(bar or {})}
    pbar = tqdm(total=int(budget.seconds) if timed else budget.steps, initial=int(elapsed) if timed else step,
                unit="s" if timed else "step", **bar_cfg)
    result: dict = {}
    net.train()
    while budget.running(step, elapsed):
        started = time.perf_counter()
        set_lr(optimizer, lr(budget.progress(step, elapsed)))
        batch = sample(step)
        with autocast:
            result = net(batch)
        loss = result["loss"]
        check_finite(loss, step, batch, last_good() if callable(last_good) else last_good)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        optimizer.step()
        step += 1
        elapsed += time.perf_counter() - started
        pbar.update(min(int(elapsed), int(budget.seconds)) - pbar.n if timed else 1)  # whole seconds
        if timed and elapsed >= budget.seconds and step <= budget.min_steps:  # the minutes are over, the floor is not
            pbar.set_description_str(f"{bar_cfg['desc']}: step floor {step}/{budget.min_steps}", refresh=False)
        if step % log_every == 0 or step == 1:
            metrics = {k: float(dist.all_reduce_mean(v.detach().float())) for k, v in result.items()
                       if torch.is_tensor(v) and v.dim() == 0}
            metrics.update(lr=optimizer.param_groups[0]["lr"], grad_norm=float(grad_norm), elapsed=elapsed)
            if logger is not None:
                logger.log(step, metrics)
            pbar.set_postfix(loss=f"{metrics['loss']:.3f}")
            if on_log is not None:
                on_log(step, metrics)
        if save_every and step % save_every == 0:
            save(step, elapsed)
    pbar.close()
    return step, elapsed, result


def pretrain(cfg: Config, source=None, on_step=None) -> Path:
    """Train (or resume) into cfg.train.out and return the final checkpoint directory.

    `source` is anything with `.sample(seed, step, batch_size, T, rank, world) -> batch`; by default
    it is built from cfg.data. `on_step(step, metrics)` is called after every logged step.
    """
    tc = cfg.train
    device = dist.setup()
    out = Path(tc.out)
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(config_json(cfg))
    torch.manual_seed(tc.seed)
    model = SyncLipMAE(cfg).to(device)
    optimizer = build_optimizer(model, tc, cfg.loss.temperature_lr_mult)
    logger = MetricLogger(out, enabled=dist.is_main())
    fresh = latest_checkpoint(out) is None
    step, elapsed = resume(out, model, optimizer, device, logger)
    if fresh and tc.init:  # a new run started from other weights; a resumed one ignores train.init
        load_weights(model, init_checkpoint(tc.init), device)
    source = source if source is not None else build_source(cfg, progress=tc.progress)
    net = _wrap(model, cfg, device)
    if tc.compile:
        net = torch.compile(net)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    seconds = tc.minutes * 60.0
    # the step floor; round first, since 1.1 * 50 is 55.00000000000001 in floats
    min_steps = math.ceil(round(tc.min_steps_per_minute * tc.minutes, 6)) if seconds > 0 else 0
    budget = Budget(steps=tc.steps if seconds <= 0 else 0, seconds=seconds, min_steps=min_steps)
    saved = []

    def sample(i: int) -> dict:
        return _to(source.sample(tc.seed, i, tc.batch_size, cfg.data.frames, dist.rank(), dist.world_size()), device)

    def save(i: int, spent: float) -> Path:
        path = None
        if dist.is_main():
            path = save_checkpoint(out, model, optimizer, i, {"elapsed": spent})
        if dist.is_distributed():
            torch.distributed.barrier()
        saved.append(path or latest_checkpoint(out))
        return saved[-1]

    step, elapsed, _ = fit(net, optimizer, sample, budget, lambda p: lr_at(p, tc.lr, tc.warmup, tc.min_lr),
                           tc.grad_clip, step, elapsed, tc.log_every, logger, on_step, tc.ckpt_every, save,
                           last_good=lambda: latest_checkpoint(out), autocast=autocast,
                           bar={"desc": "pretrain", "disable": not (tc.progress and dist.is_main())})
    last = saved[-1] if saved else None
    if last is None or latest_checkpoint(out) != out / "checkpoints" / f"step_{step:07d}":
        last = save(step, elapsed)
    logger.close()
    return last


def pretrain_main(cfg: Config) -> Path:
    try:
        return pretrain(cfg)
    finally:
        dist.cleanup()


__all__ = ["init_checkpoint", "fit", "Budget", "check_finite", "pretrain", "pretrain_main", "TrainingError", "build_source"]
