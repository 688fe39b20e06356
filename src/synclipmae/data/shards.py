"""Real video as training data: `prepare` writes webdataset tar shards of fixed-length face clips, and
`ShardSource` streams them into the training loop (DESIGN §4, §8).

Stages of `prepare`, in order, each re-runnable (a finished shard is never redone):

1. `plan`: the inputs (files, folders, text lists) are expanded, de-duplicated and sorted; job
   `shard_index` of `num_shards` takes every `num_shards`-th file, and its files are grouped
   `files_per_shard` at a time into shards. The plan is a pure function of the inputs and these
   numbers, so a job array can run the jobs on many machines.
2. `prepare_file`: decode -> face tracks -> crops framed like SynthTalk frames at `size` px
   (`media.pipeline.iter_face_segments`, the stage `sync` uses) -> face / lower-face masks
   (`FaceTrack.masks`) -> clips of `clip_frames` frames covering each whole track (`clip_starts`), with
   their 16 kHz audio.
   A file that cannot be used is a failure with a one-line reason; faceless frames are only counted.
3. `_write_shard`: the shard's clips streamed into `NAME.tar.tmp`, renamed to `NAME.tar` when
   complete, then `NAME.json` (its inputs, clips, seconds and failures) is written: that file marks
   the shard finished. Worker processes write different shards in parallel.
4. the index JSON of the job (`index.json`, or `index-I-of-N.json` for a job array): clips, seconds,
   shards, and every failure with its reason (also those of shards finished by an earlier run).

Shard layout (webdataset: consecutive members sharing a KEY form one sample):

    KEY.frames.npy      uint8 [Tc, S, S, 3]   face crops, RGB, on the 25 fps timeline
    KEY.audio.npy       float32 [Tc * 640]    16 kHz mono
    KEY.face_mask.npy   bool [Tc, S, S]       face region
    KEY.mouth_mask.npy  bool [Tc, S, S]       lower face (nose base to chin)
    KEY.json            source, track, start_frame, start_s, clip_frames, size, fps_in, backend, version

`ShardSource.sample(seed, step, batch_size, T, rank, world)` returns batches with the keys and dtypes of
`ClipBank.sample`: shards are split across ranks (and data-loader workers), read in a seeded order
each epoch through a shuffle buffer, and a random window of T frames is cut from each clip. A corrupt
sample (or a truncated shard) is skipped and counted in `ShardSource.corrupt`.
"""
from __future__ import annotations

import glob
import io
import itertools
import json
import multiprocessing as mp
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from synclipmae.config import IMG_SIZE
from synclipmae.errors import one_line
from synclipmae.media.decode import MediaError
from synclipmae.media.pipeline import FaceError, expand_inputs, iter_face_segments
from synclipmae.timing import TIMING
from synclipmae.version import __version__

__all__ = ["prepare", "prepare_file", "plan", "ShardSource", "ShardError", "find_shards", "read_shard",
           "clip_starts", "CLIP_FRAMES", "FILES_PER_SHARD", "SHUFFLE_BUFFER"]

CLIP_FRAMES = 50          # default: frames per stored clip (2 s); training cuts windows of data.frames from it
FILES_PER_SHARD = 32      # default: input files per shard (short dataset clips give ~100-300 clips a shard)
SHUFFLE_BUFFER = 64       # default: clips held by each reader's shuffle buffer (~2.3 MB each at 96 px, 50 frames)
PARTS = ("frames", "audio", "face_mask", "mouth_mask")


class ShardError(ValueError):
    """One-line reason shards cannot be read (none found, wrong layout)."""


# ----------------------------------------------------------------------------------------------------
# 1. plan


@dataclass
class ShardPlan:
    name: str               # shard-{job:05d}-{k:05d}
    inputs: list[str]


def plan(inputs, shard_index: int = 0, num_shards: int = 1, files_per_shard: int = FILES_PER_SHARD) -> list[ShardPlan]:
    """The shards job `shard_index` of `num_shards` writes: a pure function of the arguments."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index must be in [0, {num_shards}) and --num-shards >= 1")
    if files_per_shard < 1:
        raise ValueError("files_per_shard must be >= 1")
    files = sorted({str(p) for p in expand_inputs(inputs)})
    mine = files[shard_index::num_shards]
    return [ShardPlan(f"shard-{shard_index:05d}-{k:05d}", mine[i:i + files_per_shard])
            for k, i in enumerate(range(0, len(mine), files_per_shard))]


# ----------------------------------------------------------------------------------------------------
# 2. one file -> clips


def clip_starts(n: int, clip_frames: int) -> list[int]:
    """Starts of the clips cut from a track of n frames: consecutive clips, plus one ending at the
    track's last frame when clip_frames does not divide n (so every frame is used; that last clip
    overlaps the one before it). A 75-frame GRID file gives [0, 25] with clips of 50."""
    starts = list(range(0, n - clip_frames + 1, clip_frames))
    if starts and starts[-1] + clip_frames < n:
        starts.append(n - clip_frames)
    return starts


def prepare_file(path, size: int = IMG_SIZE, clip_frames: int = CLIP_FRAMES, backend: str = "auto"):
    """Yield the clips of one video file: dicts with frames, audio, face_mask, mouth_mask (see the
    shard layout) and meta. Raises MediaError / FaceError (one line) when the file gives no clip."""
    spf = TIMING.samples_per_frame
    name = Path(path).name
    made, longest, faceless, frames = 0, 0, 0, 0
    for seg in iter_face_segments(path, size, need_audio=True, masks=True, min_frames=clip_frames, backend=backend):
        frames += seg.num_frames
        faceless += seg.faceless_frames
        for tc in seg.tracks:
            longest = max(longest, len(tc))
            for i0 in clip_starts(len(tc), clip_frames):              # in the track
                s0 = tc.start_frame - seg.start_frame + i0            # in the segment
                made += 1
                yield {
                    "frames": tc.crops[i0:i0 + clip_frames],
                    "audio": seg.audio[s0 * spf:(s0 + clip_frames) * spf],
                    "face_mask": tc.face_mask[i0:i0 + clip_frames],
                    "mouth_mask": tc.mouth_mask[i0:i0 + clip_frames],
                    "meta": {"source": str(path), "track": tc.track, "start_frame": tc.start_frame + i0,
                             "start_s": (tc.start_frame + i0) / TIMING.fps, "clip_frames": clip_frames,
                             "size": size, "fps_in": round(seg.fps_in, 3), "backend": seg.backend,
                             "version": __version__},
                }
    if made == 0:
        if longest:
            raise FaceError(f"{name}: no face track of {clip_frames} frames ({clip_frames / TIMING.fps:.1f} s); "
                            f"the longest has {longest}")
        raise FaceError(f"{name}: no face found in {frames} frames")


# ----------------------------------------------------------------------------------------------------
# 3. shards


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(x), allow_pickle=False)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644   # fixed mtime: the same inputs give the same bytes
    tar.addfile(info, io.BytesIO(data))


def _shard_done(out: Path, shard: ShardPlan, size: int, clip_frames: int) -> dict | None:
    """The summary of a shard finished by an earlier run with the same inputs and settings, else None."""
    js, tar = out / f"{shard.name}.json", out / f"{shard.name}.tar"
    if not (js.is_file() and tar.is_file()):
        return None
    try:
        summary = json.loads(js.read_text())
    except (OSError, ValueError):
        return None
    same = (summary.get("inputs") == shard.inputs and summary.get("size") == size
            and summary.get("clip_frames") == clip_frames)
    return summary if same else None


def _write_shard(job) -> dict:
    """Process one shard's inputs and write NAME.tar then NAME.json; returns the summary."""
    out, shard, size, clip_frames, backend = job
    out = Path(out)
    tmp = out / f"{shard.name}.tar.tmp"
    clips, files, failures = 0, [], []
    with tarfile.open(tmp, "w") as tar:
        for path in shard.inputs:
            n = 0
            try:
                for clip in prepare_file(path, size, clip_frames, backend):
                    key = f"{shard.name}_{clips:06d}"
                    for part in PARTS:
                        _add(tar, f"{key}.{part}.npy", _npy(clip[part]))
                    _add(tar, f"{key}.json", json.dumps(clip["meta"]).encode())
                    clips += 1
                    n += 1
            except (MediaError, FaceError) as err:
                failures.append({"input": path, "error": one_line(err)})
            except Exception as err:  # noqa: BLE001 - one bad file never stops the others
                if os.environ.get("SYNCLIPMAE_DEBUG"):
                    raise
                failures.append({"input": path, "error": f"{Path(path).name}: {type(err).__name__}: {one_line(err)}"})
            files.append({"input": path, "clips": n})
    os.replace(tmp, out / f"{shard.name}.tar")
    summary = {"shard": f"{shard.name}.tar", "inputs": shard.inputs, "files": files, "clips": clips,
               "frames": clips * clip_frames, "seconds": clips * clip_frames / TIMING.fps, "size": size,
               "clip_frames": clip_frames, "failures": failures}
    js_tmp = out / f"{shard.name}.json.tmp"
    js_tmp.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(js_tmp, out / f"{shard.name}.json")
    return summary


def _worker_init() -> None:
    torch.set_num_threads(1)


def prepare(inputs, out, size: int = IMG_SIZE, clip_frames: int = CLIP_FRAMES, workers: int = 1, shard_index: int = 0,
            num_shards: int = 1, files_per_shard: int = FILES_PER_SHARD, backend: str = "auto",
            progress: bool = True) -> dict:
    """Video files -> webdataset shards in `out` (see the module docstring); returns the job's index,
    also written to `out/index.json` (or `out/index-I-of-N.json` when num_shards > 1). Shards
    finished by an earlier run with the same inputs and settings are skipped."""
    if size < 16 or clip_frames < 1 or workers < 1:
        raise ValueError("size must be >= 16, clip_frames >= 1 and workers >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shards = plan(inputs, shard_index, num_shards, files_per_shard)
    summaries: dict[str, dict] = {}
    todo = []
    for shard in shards:
        done = _shard_done(out, shard, size, clip_frames)
        if done is not None:
            summaries[shard.name] = done
        else:
            todo.append(shard)

    total = sum(len(s.inputs) for s in shards)
    bar = tqdm(total=total, initial=total - sum(len(s.inputs) for s in todo), desc="prepare", unit="file",
               disable=None if progress else True)  # None: shown on a terminal only
    jobs = [(str(out), s, size, clip_frames, backend) for s in todo]
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            summaries[job[1].name] = _write_shard(job)
            bar.update(len(job[1].inputs))
    else:
        with mp.get_context("spawn").Pool(min(workers, len(jobs)), initializer=_worker_init) as pool:
            for summary in pool.imap_unordered(_write_shard, jobs):
                summaries[Path(summary["shard"]).stem] = summary
                bar.update(len(summary["inputs"]))
    bar.close()
    ordered = [summaries[s.name] for s in shards]
    index = {
        "version": __version__, "size": size, "clip_frames": clip_frames, "fps": TIMING.fps,
        "sample_rate": TIMING.sample_rate, "shard_index": shard_index, "num_shards": num_shards,
        "inputs": total, "clips": sum(s["clips"] for s in ordered),
        "seconds": round(sum(s["seconds"] for s in ordered), 3),
        "shards": [{"shard": s["shard"], "clips": s["clips"], "seconds": s["seconds"], "inputs": len(s["inputs"])}
                   for s in ordered],
        "skipped_shards": len(shards) - len(todo),
        "failures": [f for s in ordered for f in s["failures"]],
    }
    name = "index.json" if num_shards == 1 else f"index-{shard_index:05d}-of-{num_shards:05d}.json"
    tmp = out / f"{name}.tmp"
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    os.replace(tmp, out / name)
    index["path"] = str(out / name)
    return index


# ----------------------------------------------------------------------------------------------------
# reading


def find_shards(spec) -> list[Path]:
    """A folder (every .tar below it), a glob pattern, or one .tar file -> sorted shard paths."""
    p = Path(spec)
    if p.is_dir():
        found = sorted(p.rglob("*.tar"))
    elif p.is_file():
        found = [p]
    else:
        found = sorted(Path(f) for f in glob.glob(str(spec), recursive=True) if f.endswith(".tar"))
    if not found:
        raise ShardError(f"no .tar shards found at '{spec}' (a folder or glob of `synclipmae prepare` output)")
    return found


def _decode_sample(key: str, parts: dict) -> dict:
    """Raw members of one sample -> arrays; ValueError when a part is missing or malformed."""
    missing = [p for p in PARTS if f"{p}.npy" not in parts]
    if missing:
        raise ValueError(f"{key}: missing {', '.join(missing)}")
    arr = {p: np.load(io.BytesIO(parts[f"{p}.npy"]), allow_pickle=False) for p in PARTS}
    f = arr["frames"]
    if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3 or f.shape[1] != f.shape[2]:
        raise ValueError(f"{key}: frames must be uint8 [T, S, S, 3], got {f.dtype} {f.shape}")
    T = f.shape[0]
    if arr["audio"].shape != (T * TIMING.samples_per_frame,):
        raise ValueError(f"{key}: audio has {arr['audio'].shape} samples for {T} frames")
    for m in ("face_mask", "mouth_mask"):
        if arr[m].shape != f.shape[:3]:
            raise ValueError(f"{key}: {m} has shape {arr[m].shape}, frames {f.shape[:3]}")
        arr[m] = arr[m].astype(bool, copy=False)
    arr["audio"] = arr["audio"].astype(np.float32, copy=False)
    meta = json.loads(parts["json"]) if "json" in parts else {}
    arr["key"] = key
    arr["source"] = str(meta.get("source", key))
    return arr


def read_shard(path, keep=None):
    """Yield the samples of one shard in order (streamed: the file is read once, front to back).
    Each is a dict of arrays (PARTS) plus key and source, or {"corrupt": reason} for a sample (or
    the rest of a truncated shard) that cannot be read. `keep(i)`: decode sample i only when true."""
    name = Path(path).name
    key, parts, i = None, {}, 0

    def flush():
        nonlocal i
        try:
            if keep is None or keep(i):
                return _decode_sample(key, parts)
            return None
        except Exception as err:  # noqa: BLE001 - malformed npy, bad json, wrong shapes
            return {"corrupt": f"{name}: {one_line(err)}"}
        finally:
            i += 1

    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                k, _, ext = base.partition(".")
                data = tar.extractfile(member).read()
                if k != key:
                    if key is not None:
                        item = flush()
                        if item is not None:
                            yield item
                    key, parts = k, {}
                parts[ext] = data
    except (tarfile.TarError, EOFError, OSError) as err:
        yield {"corrupt": f"{name}: unreadable from sample {i}: {one_line(err)}"}
        return
    if key is not None:
        item = flush()
        if item is not None:
            yield item


class _ShardStream(torch.utils.data.IterableDataset):
    """Endless windows of T frames for one rank: each epoch shuffles the shard order (seeded), splits
    the shards across ranks x data-loader workers (or, with fewer shards than readers, every reader
    reads all shards and keeps every n-th sample), cuts a random window of T frames from each clip as
    it is read (so buffers and worker queues hold windows, not clips) and passes the windows through
    a shuffle buffer."""

    def __init__(self, shards: list[Path], seed: int, rank: int, world: int, buffer: int, T: int):
        self.shards, self.seed, self.rank, self.world, self.buffer, self.T = shards, seed, rank, world, buffer, T

    def _window(self, item: dict, rng: np.random.Generator) -> dict:
        Tc, T, spf = item["frames"].shape[0], self.T, TIMING.samples_per_frame
        if Tc < T:
            return {"corrupt": f"{item['key']}: clip of {Tc} frames is shorter than the window of {T}"}
        s = int(rng.integers(0, Tc - T + 1))
        out = {k: np.ascontiguousarray(item[k][s * spf:(s + T) * spf] if k == "audio" else item[k][s:s + T])
               for k in PARTS}
        out.update(key=item["key"], source=item["source"], start=s)
        return out

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        readers, me = self.world * nw, self.rank * nw + wid
        rng = np.random.default_rng([self.seed, me, 0x5A])
        buf: list = []
        for epoch in itertools.count():
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
            split = len(self.shards) >= readers
            mine = order[me::readers] if split else order
            keep = None if split else (lambda i: i % readers == me)
            good = 0
            for s in mine:
                for item in read_shard(self.shards[s], keep):
                    if "corrupt" not in item:
                        item = self._window(item, rng)
                    if "corrupt" in item:
                        yield item
                        continue
                    good += 1
                    if len(buf) < self.buffer:
                        buf.append(item)
                        continue
                    j = int(rng.integers(len(buf)))
                    buf[j], item = item, buf[j]
                    yield item
            if good == 0:
                raise ShardError(f"reader {me} of {readers} found no readable sample in {len(mine)} shards")
            if len(buf) < self.buffer:  # fewer clips than the buffer holds: shuffle them per epoch instead
                for j in rng.permutation(len(buf)):
                    yield buf[j]
                buf = []


class ShardSource:
    """Training data from `prepare` shards, with the `ClipBank.sample` interface.

    Batches: frames uint8 [B, T, S, S, 3], audio float32 [B, T*640], face_mask / mouth_mask bool
    [B, T, S, S], seed int64 [B], source list[str] ("KEY@start": KEY names the shard and the sample).
    Each call takes the next `batch_size` windows of this rank's stream (a random window of T frames
    of each clip); the per-sample seeds are drawn from (seed, step, rank). The stream is seeded by
    (seed, the first step asked for, rank, world), so a run resumed at step s reads a fresh shuffled
    order (not the one the killed run would have read). With `workers` > 0, data-loader processes
    read (each its own shards) and the stream takes from them in turn, so the order stays seeded.
    `corrupt` counts skipped samples; `last_corrupt` is the reason of the latest one."""

    def __init__(self, shards, buffer: int = SHUFFLE_BUFFER, workers: int = 0):
        self.shards = [Path(s) for s in shards]
        if not self.shards:
            raise ShardError("no shards given")
        self.buffer, self.workers = max(1, int(buffer)), max(0, int(workers))
        self.corrupt = 0
        self.last_corrupt: str | None = None
        self._it, self._state, self._loader = None, None, None
        self.size, self.clip_frames = self._probe()

    @classmethod
    def from_spec(cls, spec, **kwargs) -> "ShardSource":
        """A folder, glob or .tar file of shards (see find_shards)."""
        return cls(find_shards(spec), **kwargs)

    def _probe(self) -> tuple[int, int]:
        """(S, Tc) of the clips, from the first readable sample."""
        for shard in self.shards:
            for item in read_shard(shard):
                if "corrupt" not in item:
                    return int(item["frames"].shape[1]), int(item["frames"].shape[0])
        raise ShardError(f"no readable sample in {len(self.shards)} shards (first: {self.shards[0]})")

    def _open(self, seed: int, step: int, rank: int, world: int, T: int) -> None:
        self.close()
        stream = _ShardStream(self.shards, int(np.random.SeedSequence([seed, step]).generate_state(1)[0]),
                              rank, world, self.buffer, T)
        if self.workers > 0:
            self._loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.workers,
                                                       persistent_workers=False)
            self._it = iter(self._loader)
        else:
            self._it = iter(stream)

    def close(self) -> None:
        self._it, self._loader = None, None

    def _next_clip(self) -> dict:
        while True:
            item = next(self._it)
            if "corrupt" in item:
                self.corrupt += 1
                self.last_corrupt = str(item["corrupt"])
                continue
            return item

    def sample(self, seed: int, step: int, batch_size: int, T: int, rank: int = 0, world: int = 1) -> dict:
        if T > self.clip_frames:
            raise ShardError(f"shard clips have {self.clip_frames} frames; windows of {T} need longer clips "
                             f"(prepare --clip-frames {T} or more)")
        if self._it is None or self._state != (seed, step, rank, world, T):
            self._open(seed, step, rank, world, T)
        clips = [self._next_clip() for _ in range(batch_size)]
        self._state = (seed, step + 1, rank, world, T)
        rng = np.random.default_rng([seed, step, rank, 0xB7])
        # np.stack: torch.stack of uint8 / bool tensors is ~20x slower on CPU
        batch = {k: torch.from_numpy(np.stack([np.asarray(c[k]) for c in clips])) for k in PARTS}
        batch["seed"] = torch.from_numpy(rng.integers(0, 2**62, size=batch_size).astype(np.int64))
        batch["source"] = [f"{c['key']}@{int(c['start'])}" for c in clips]
        return batch
