"""Training clips: an in-memory bank of long clips and the seeded sampler of fixed-length windows.

Every batch is a pure function of (seed, step, rank): the global batch of `batch_size * world` windows
is drawn from one generator and each rank takes its slice, and every window carries its own `seed`
for the model's masking draws. So a resumed run, one process and many ranks all see the same data.
"""
from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from synclipmae.data.synth import SPLIT_IDENTITIES, make_clip
from synclipmae.timing import TIMING


@dataclass
class ClipBank:
    """Long clips held in memory. frames uint8 [C, Tc, H, W, 3]; audio float32 [C, Tc*640];
    face_mask, mouth_mask bool [C, Tc, H, W]; sources: one name per clip (named in errors)."""
    frames: np.ndarray
    audio: np.ndarray
    face_mask: np.ndarray
    mouth_mask: np.ndarray
    sources: list[str]

    def __len__(self) -> int:
        return self.frames.shape[0]

    def window(self, clip: int, start: int, T: int) -> dict:
        spf = TIMING.samples_per_frame
        return {
            "frames": self.frames[clip, start:start + T],
            "audio": self.audio[clip, start * spf:(start + T) * spf],
            "face_mask": self.face_mask[clip, start:start + T],
            "mouth_mask": self.mouth_mask[clip, start:start + T],
        }

    def sample(self, seed: int, step: int, batch_size: int, T: int, rank: int = 0, world: int = 1) -> dict:
        """The batch of `rank` at `step`: tensors [B, T, ...] plus seed long [B] and source names."""
        rng = np.random.default_rng([seed, step])
        total = batch_size * world
        clips = rng.choice(len(self), size=total, replace=total > len(self))
        starts = rng.integers(0, self.frames.shape[1] - T + 1, size=total)
        sample_seeds = rng.integers(0, 2**62, size=total)
        mine = slice(rank * batch_size, (rank + 1) * batch_size)
        windows = [self.window(c, s, T) for c, s in zip(clips[mine], starts[mine])]
        batch = {k: torch.from_numpy(np.stack([w[k] for w in windows])) for k in windows[0]}
        batch["seed"] = torch.from_numpy(sample_seeds[mine].astype(np.int64))
        batch["source"] = [f"{self.sources[c]}@{s}" for c, s in zip(clips[mine], starts[mine])]
        return batch


def synthtalk_bank(clips: int, seconds: float, seed: int, size: int, split: str = "train",
                   identities: int = 0, workers: int = 1, progress: bool = True) -> ClipBank:
    """Generate `clips` SynthTalk clips of `split` (deterministic in seed) into a ClipBank."""
    n_ids = identities or SPLIT_IDENTITIES[split]
    jobs = [(split, i, seconds, size, seed, i % n_ids) for i in range(clips)]
    made = map_jobs(_make, jobs, workers, progress, desc=f"SynthTalk {split}")
    return ClipBank(
        frames=np.stack([m[0] for m in made]), audio=np.stack([m[1] for m in made]),
        face_mask=np.stack([m[2] for m in made]), mouth_mask=np.stack([m[3] for m in made]),
        sources=[f"synthtalk:{split}/{i:05d}" for i in range(clips)],
    )


def _make(job):
    split, index, seconds, size, seed, identity = job
    clip = make_clip(split, index, seconds=seconds, size=size, seed=seed, identity_index=identity)
    return clip.frames, clip.audio, clip.face_mask, clip.mouth_mask


def map_jobs(fn, jobs, workers: int, progress: bool, desc: str) -> list:
    """[fn(job) for job in jobs], in order, on `workers` processes (forked where possible), with a
    tqdm bar named `desc` when `progress`."""
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, leave=False)
    if workers <= 1:
        out = []
        for job in jobs:
            out.append(fn(job))
            bar.update()
    else:
        with mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(workers) as pool:
            out = []
            for item in pool.imap(fn, jobs, chunksize=4):
                out.append(item)
                bar.update()
    bar.close()
    return out


class MixedSource:
    """Batches from `real` with a share of the steps given to `synth` (a curriculum that keeps the
    generated world in view while a model learns real faces). Step s is a synth step when
    floor((s + 1) * share) > floor(s * share): the steps interleave evenly, exactly `share` of them go
    to synth, and each source is asked for its own consecutive step numbers, so the stream is a pure
    function of (seed, step) like its parts (a resumed run reads what an unbroken one would)."""

    def __init__(self, real, synth, share: float):
        if not 0.0 <= share < 1.0:
            raise ValueError(f"the synthetic share must be in [0, 1); got {share}")
        self.real, self.synth, self.share = real, synth, share

    def sample(self, seed: int, step: int, batch_size: int, T: int, rank: int = 0, world: int = 1) -> dict:
        done = int(np.floor(step * self.share + 1e-9))                  # synth steps before this one
        if int(np.floor((step + 1) * self.share + 1e-9)) > done:
            return self.synth.sample(seed, done, batch_size, T, rank, world)
        return self.real.sample(seed, step - done, batch_size, T, rank, world)
