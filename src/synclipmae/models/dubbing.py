"""Running the dubbing generator (`models.dubber.Dubber`) on uint8 face crops: `dub_crops` for one
video's crops in segments of `DubConfig.segment` frames, each conditioned on the previous segment's
last generated frame; `dub_batch` for many same-length videos at once; `condition_tokens` the
condition c (a_t of new speech, or z_voc of a driving face) for them.
"""
from __future__ import annotations

import numpy as np
import torch

from synclipmae.models.dubber import Dubber
from synclipmae.timing import TIMING

def _check(name: str, x: np.ndarray, shape: tuple, dtype) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != dtype or x.shape != shape:
        raise ValueError(f"{name} must be {np.dtype(dtype).name} {list(shape)}, got {x.dtype.name} {list(x.shape)}")
    return x


@torch.no_grad()
def condition_tokens(dubber: Dubber, T: int, audio: np.ndarray | None = None, driving: np.ndarray | None = None,
                     chunk: int = 256) -> torch.Tensor:
    """c for T frames: a_t of `audio` float32 [T * 640] or z_voc of `driving` uint8 [T, H, W, 3]. [T, D]."""
    if audio is not None:
        return dubber.net.audio_tokens(audio).float()                          # (T, D)
    parts = [dubber.encode_full(torch.from_numpy(np.ascontiguousarray(driving[i:i + chunk])).to(dubber.device))["z_voc"]
             for i in range(0, T, chunk)]
    return torch.cat(parts).float()                                              # (T, D)


@torch.no_grad()
def dub_crops(dubber: Dubber, crops: np.ndarray, mouth_masks: np.ndarray, *, audio: np.ndarray | None = None,
              driving: np.ndarray | None = None, prev: np.ndarray | None = None, segment: int | None = None,
              progress=None) -> np.ndarray:
    """Repaint the lower face of face crops to follow new speech (audio-driven) or a driving face
    (video-driven).

    crops uint8 [T, H, W, 3] (face crops at dubber.img_size, framed like SynthTalk frames);
    mouth_masks bool [T, H, W]: the region to repaint (grow a detector's lower-face mask with
        `dilate_masks(masks, dubber.cfg.mask_dilation)` first);
    exactly one of audio float32 [T * 640] (16 kHz, sample 0 at frame 0: audio-driven) or driving uint8
        [T, H, W, 3] (crops of the driving face: video-driven);
    prev uint8 [H, W, 3] or None: the last generated frame of the previous call (long videos are fed
        in chunks; pass chunks of a multiple of `segment` frames to get exactly the frames one call
        would give with a driving video; with audio, a_t at a chunk's edges sees less context).
        None (a video's start): the first segment is conditioned on the source crop just after it,
        crops[min(segment, T - 1)], a reference frame of the same video;
    segment: frames per segment (default dubber.cfg.segment); each segment is conditioned on the
        previous segment's last generated frame (paper);
    progress: None or a callable given the number of frames finished after each segment (e.g. a tqdm
        bar's `update`).
    Returns uint8 [T, H, W, 3]; pixels outside mouth_masks equal the input crops."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"crops must be uint8 [T, H, W, 3], got {crops.dtype.name} {list(crops.shape)}")
    T, H, W, _ = crops.shape
    S = dubber.img_size
    if (H, W) != (S, S):
        raise ValueError(f"crops must be {S}x{S} (dubber.img_size), got {H}x{W}")
    mouth_masks = _check("mouth_masks", mouth_masks, (T, H, W), np.bool_)
    if (audio is None) == (driving is None):
        raise ValueError("give exactly one of audio (audio-driven) or driving (video-driven)")
    if audio is not None:
        audio = np.asarray(audio, np.float32).reshape(-1)
        if len(audio) != T * TIMING.samples_per_frame:
            raise ValueError(f"audio must have T * {TIMING.samples_per_frame} = {T * TIMING.samples_per_frame} "
                             f"samples for {T} frames, got {len(audio)}")
    else:
        driving = _check("driving", driving, (T, H, W, 3), np.uint8)
    if prev is not None:
        prev = _check("prev", prev, (H, W, 3), np.uint8)
    seg = int(segment or dubber.cfg.segment)
    if seg < 1:
        raise ValueError(f"segment must be >= 1, got {segment}")
    if T == 0:
        return crops.copy()
    dubber.eval()
    c = condition_tokens(dubber, T, audio, driving)                             # (T, D)
    return _generate_videos(dubber, crops[None], mouth_masks[None], c[None], None if prev is None else prev[None],
                            seg, progress)[0]


def _generate_videos(dubber: Dubber, crops: np.ndarray, masks: np.ndarray, c: torch.Tensor, prev: np.ndarray | None,
                     seg: int, progress=None) -> np.ndarray:
    """The segment loop over V videos of T frames at once: crops uint8 [V, T, H, W, 3], masks bool
    [V, T, H, W], c float [V, T, D], prev uint8 [V, H, W, 3] or None. Returns uint8 [V, T, H, W, 3]."""
    V, T = crops.shape[:2]
    dev = dubber.device
    c = c.to(dev)
    out = crops.copy()
    # the first segment of a video has no generated frame before it: it is conditioned on the source
    # frame just after it instead (a reference frame of the same video with its own mouth, Wav2Lip style)
    last = torch.from_numpy(np.ascontiguousarray(prev if prev is not None else crops[:, min(seg, T - 1)])).to(dev)
    for s0 in range(0, T, seg):
        s1 = min(T, s0 + seg)
        n = s1 - s0
        frames = torch.from_numpy(np.ascontiguousarray(crops[:, s0:s1])).to(dev).flatten(0, 1)   # (V*n, H, W, 3)
        mask = torch.from_numpy(np.ascontiguousarray(masks[:, s0:s1])).to(dev).flatten(0, 1)
        if mask.any():
            rep = lambda t: t.repeat_interleave(n, 0)                                            # noqa: E731
            segments = torch.arange(V, device=dev).repeat_interleave(n)         # z_id: mean over each video's segment
            first = frames.view(V, n, *frames.shape[1:])[:, 0]                  # (V, H, W, 3): each segment's start
            reference = rep(first if dubber.cfg.reference == "segment" else last)
            img = dubber.generate(frames, mask, c[:, s0:s1].flatten(0, 1), segments=segments,
                                  prev_mem=rep(dubber.prev_memory(last, V)), reference=reference)["image"]
            gen = (img * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy().reshape(V, n, *crops.shape[2:])
            out[:, s0:s1] = np.where(masks[:, s0:s1, ..., None], gen, crops[:, s0:s1])
        last = torch.from_numpy(np.ascontiguousarray(out[:, s1 - 1])).to(dev)
        if progress is not None:
            progress(n)
    return out


@torch.no_grad()
def dub_batch(dubber: Dubber, crops: np.ndarray, mouth_masks: np.ndarray, *, audio: np.ndarray | None = None,
              driving: np.ndarray | None = None, segment: int | None = None, progress=None) -> np.ndarray:
    """`dub_crops` for V videos of the same length at once (one network call per segment for all of
    them: faster on a CPU). crops uint8 [V, T, H, W, 3], mouth_masks bool [V, T, H, W], audio float32
    [V, T * 640] or driving uint8 [V, T, H, W, 3]. Returns uint8 [V, T, H, W, 3]; each video's frames
    match its own `dub_crops` call up to float rounding (a pixel may differ by 1)."""
    crops = np.asarray(crops)
    if crops.ndim != 5:
        raise ValueError(f"crops must be uint8 [V, T, H, W, 3], got {list(crops.shape)}")
    if (audio is None) == (driving is None):
        raise ValueError("give exactly one of audio (audio-driven) or driving (video-driven)")
    V, T = crops.shape[:2]
    seg = int(segment or dubber.cfg.segment)
    dubber.eval()
    c = torch.stack([condition_tokens(dubber, T, None if audio is None else audio[v],
                                      None if driving is None else driving[v]) for v in range(V)])
    return _generate_videos(dubber, crops, np.asarray(mouth_masks, bool), c, None, seg, progress)


__all__ = ["dub_crops", "dub_batch", "condition_tokens"]
