"""One training loop for pretraining on a laptop CPU or many GPUs (DESIGN §8).

`python -m synclipmae pretrain ...` runs it on one process; `torchrun --nproc_per_node=G -m synclipmae
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
from pathlib import Path

import torch
from tqdm import tqdm

from synclipmae import dist
from synclipmae.config import Config, config_json
from synclipmae.data.clips import synthtalk_bank
from synclipmae.data.shards import ShardError, ShardSource
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.train.checkpoint import latest_checkpoint, load_train_state, save_checkpoint
from synclipmae.train.log import MetricLogger
from synclipmae.train.optim import build_optimizer, lr_at, set_lr
from synclipmae.weights import load_weights


class TrainingError(RuntimeError):
    """A one-line reason training stopped (non-finite loss, bad data)."""


def build_source(cfg: Config, progress: bool = True):
    """The training data named by cfg.data.source: generated SynthTalk clips, or `prepare` shards."""
    if cfg.data.source == "synthtalk":
        return synthtalk_bank(cfg.data.clips, cfg.data.seconds, cfg.train.seed, cfg.model.img_size,
                              identities=cfg.data.identities, workers=max(1, cfg.data.workers),
                              progress=progress and dist.is_main())

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
    step, elapsed = 0, 0.0
    logger = MetricLogger(out, enabled=dist.is_main())
    resume = latest_checkpoint(out)
    if resume is not None:
        load_weights(model, resume, device)
        state = load_train_state(resume)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed = int(state["step"]), float(state.get("elapsed", 0.0))
        logger.truncate_after(step)
    source = source if source is not None else build_source(cfg, progress=tc.progress)
    net = _wrap(model, cfg, device)
    if tc.compile:
        net = torch.compile(net)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    budget = tc.minutes * 60.0
    # the step floor; round first, since 1.1 * 50 is 55.00000000000001 in floats
    min_steps = math.ceil(round(tc.min_steps_per_minute * tc.minutes, 6)) if budget > 0 else 0

    def progress_now() -> float:
        if budget <= 0:
            return step / max(tc.steps, 1)
        return min(1.0, elapsed / budget, step / min_steps if min_steps else 1.0)

    def running() -> bool:
        return step < tc.steps if budget <= 0 else (elapsed < budget or step < min_steps)

    def save() -> Path:
        path = None
        if dist.is_main():
            path = save_checkpoint(out, model, optimizer, step, {"elapsed": elapsed})
        if dist.is_distributed():
            torch.distributed.barrier()
        return path or latest_checkpoint(out)

    bar = tqdm(total=tc.steps if budget <= 0 else int(budget), initial=step if budget <= 0 else int(elapsed),
               unit="step" if budget <= 0 else "s", desc="pretrain", disable=not (tc.progress and dist.is_main()))
    last = None
    net.train()
    while running():
        started = time.perf_counter()
        set_lr(optimizer, lr_at(progress_now(), tc))
        batch = _to(source.sample(tc.seed, step, tc.batch_size, cfg.data.frames, dist.rank(), dist.world_size()), device)
        with autocast:
            result = net(batch)
        loss = result["loss"]
        if not torch.isfinite(loss).all():
            raise TrainingError(f"non-finite loss {loss.item()} at step {step} (batch: {', '.join(batch['source'])}); "
                                f"last good checkpoint: {latest_checkpoint(out) or 'none'}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)
        optimizer.step()
        step += 1
        took = time.perf_counter() - started
        elapsed += took
        bar.update(1 if budget <= 0 else min(int(elapsed), int(budget)) - bar.n)  # whole seconds
        if budget > 0 and elapsed >= budget and step <= min_steps:  # the minutes are over, the step floor is not
            bar.set_description_str(f"pretrain: step floor {step}/{min_steps}", refresh=False)
        if step % tc.log_every == 0 or step == 1:
            metrics = {k: float(dist.all_reduce_mean(v.detach().float())) for k, v in result.items()
                       if torch.is_tensor(v) and v.dim() == 0}
            metrics.update(lr=optimizer.param_groups[0]["lr"], grad_norm=float(grad_norm), elapsed=elapsed)
            logger.log(step, metrics)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}")
            if on_step is not None:
                on_step(step, metrics)
        if step % tc.ckpt_every == 0:
            last = save()
    bar.close()
    if last is None or latest_checkpoint(out) != out / "checkpoints" / f"step_{step:07d}":
        last = save()
    logger.close()
    return last


def pretrain_main(cfg: Config) -> Path:
    try:
        return pretrain(cfg)
    finally:
        dist.cleanup()


__all__ = ["pretrain", "pretrain_main", "TrainingError", "build_source"]
