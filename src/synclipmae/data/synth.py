"""SynthTalk: the built-in procedural talking-face world (DESIGN §5).

Every factor of a clip is known, so SynthTalk is the default dataset, the test oracle and the place
where each downstream task is scored exactly. A clip is built from three independent parts:

    identity  = get_identity(split, i)            appearance + voice; train and test never coincide
    vocal     = speak(identity, T, rng, emotion)  speech audio and the mouth it drives (offset 0)
    ambient   = ambient(T, rng, emotion, actions) blinks, head pose, brows, emotion, actions
    frames    = render(identity, ambient, vocal)  anti-aliased 2-D drawing at 2x, box-filtered down

`render` is also the counterfactual render: identity A with the ambient motion of clip X and the
mouth of audio Y is the exact ground truth for dubbing. `make_clip` ties it together deterministically
from (split, index, seed); `write_clip` / `write_dataset` put clips on disk (npz + json, or mp4 + wav +
json for the real-video path) and `load_clip_files` reads the npz form back.

Timing comes only from `synclipmae.timing.TIMING`. numpy at import; scipy, PyAV, soundfile and tqdm
are imported inside the functions that use them.

Defaults (not from the paper): 200 train and 20 test identities; 4 s clips at 96x96; background noise
at 15-40 dB SNR; each action present with probability 0.3; emotion uniform over `EMOTIONS`.
"""
from __future__ import annotations

import colorsys
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synclipmae.config import IMG_SIZE
from synclipmae.data import synth_face, synth_speech
from synclipmae.data.synth_speech import LEXICON, PHONEMES, VOCABULARY
from synclipmae.media.write import write_video, write_wav
from synclipmae.timing import TIMING

__all__ = [
    "EMOTIONS", "ACTIONS", "VOCABULARY", "LEXICON", "PHONEMES", "SPLIT_IDENTITIES", "Identity",
    "get_identity", "VocalTrack", "AmbientTrack", "speak", "ambient", "render", "Clip", "make_clip",
    "write_clip", "write_dataset", "load_clip_files",
]

EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")
ACTIONS = ("nod", "shake", "tilt", "smile", "blinks")   # multi-label per clip; "blinks" = frequent blinking
SPLIT_IDENTITIES = {"train": 200, "test": 20}           # identities per split (default)
MOUTH_CHANNELS = ("opening", "width", "rounding", "teeth", "tongue")
POSE_CHANNELS = ("yaw", "pitch", "roll", "tx", "ty", "scale")

_SPLIT_CODES = {"train": 1, "test": 2}   # separate seed streams: train and test identities are disjoint
_STREAM_IDENTITY = 0x1D
_STREAM_CLIP = 0xC1
ACTION_PROB = 0.3                        # default chance of each action in a random clip
SNR_RANGE_DB = (15.0, 40.0)              # default background-noise SNR range


def _split_code(split: str) -> int:
    try:
        return _SPLIT_CODES[split]
    except KeyError:
        raise ValueError(f"unknown SynthTalk split {split!r}; expected one of {sorted(_SPLIT_CODES)}"
                         ) from None


# ------------------------------------------------------------------------------------------------
# Identity
# ------------------------------------------------------------------------------------------------

Color = tuple[float, float, float]

_SKIN_RAMP = ((0.98, 0.86, 0.77), (0.94, 0.77, 0.64), (0.82, 0.62, 0.46), (0.63, 0.44, 0.30),
              (0.42, 0.28, 0.19), (0.30, 0.20, 0.14))
_HAIR_COLORS = ((0.07, 0.06, 0.06), (0.20, 0.13, 0.08), (0.38, 0.24, 0.13), (0.55, 0.24, 0.11),
                (0.86, 0.72, 0.45), (0.62, 0.62, 0.62), (0.90, 0.89, 0.86), (0.22, 0.33, 0.75),
                (0.88, 0.42, 0.60), (0.28, 0.58, 0.34))
_HAIR_P = (0.24, 0.2, 0.14, 0.09, 0.1, 0.07, 0.04, 0.04, 0.04, 0.04)
_EYE_COLORS = ((0.22, 0.13, 0.07), (0.42, 0.26, 0.12), (0.50, 0.45, 0.20), (0.28, 0.55, 0.30),
               (0.30, 0.50, 0.82), (0.50, 0.56, 0.62))


@dataclass(frozen=True)
class Identity:
    """Appearance and voice of one SynthTalk person: a deterministic function of (split, index)."""
    split: str
    index: int
    face_width: float           # half-width of the upper face (frame units)
    face_height: float          # half-height of the upper face (frame units)
    jaw: float                  # lower-face width / upper-face width
    skin: Color
    hair_color: Color
    hair_style: int             # index into synth_face.HAIR_STYLES
    hair_volume: float
    eye_color: Color
    eye_size: float
    eye_spacing: float          # half distance between the eye centres (frame units)
    brow_thickness: float
    lip_color: Color
    nose_length: float
    background: Color
    background2: Color
    background_pattern: int     # index into synth_face.BACKGROUND_PATTERNS
    background_angle: float
    shirt_color: Color
    f0: float                   # mean voice pitch, Hz (90-250)
    formant_scale: float        # vocal-tract scale of the formant frequencies (0.85-1.2)
    speaking_rate: float        # phonemes per second relative to average (0.8-1.25)

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:04d}"


def _hsv(h: float, s: float, v: float) -> Color:
    return tuple(round(float(c), 4) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _c(x) -> Color:
    return tuple(round(float(min(max(c, 0.0), 1.0)), 4) for c in x)


def get_identity(split: str, index: int) -> Identity:
    """The identity `index` of `split`. Train and test draw from separate seed streams."""
    if int(index) < 0:
        raise ValueError(f"identity index must be >= 0, got {index}")
    rng = np.random.default_rng([_STREAM_IDENTITY, _split_code(split), int(index)])
    u = rng.uniform(0.0, len(_SKIN_RAMP) - 1)
    i = min(int(u), len(_SKIN_RAMP) - 2)
    skin = np.array(_SKIN_RAMP[i]) * (1 - (u - i)) + np.array(_SKIN_RAMP[i + 1]) * (u - i)
    skin = skin + rng.uniform(-0.025, 0.025, 3)
    hair = np.array(_HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_P)]) * rng.uniform(0.85, 1.12)
    eye = np.array(_EYE_COLORS[rng.integers(len(_EYE_COLORS))]) * rng.uniform(0.85, 1.1)
    lip = skin * np.array([0.86, 0.58, 0.60]) + np.array([0.06, 0.0, 0.0])
    bh = rng.random()
    bg1 = _hsv(bh, rng.uniform(0.15, 0.7), rng.uniform(0.35, 0.92))
    bg2 = _hsv(bh + rng.uniform(-0.15, 0.15), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.95))
    f0 = float(rng.uniform(90.0, 150.0) if rng.random() < 0.5 else rng.uniform(150.0, 250.0))
    formant_scale = float(np.clip(0.88 + 0.22 * (f0 - 90.0) / 160.0 + rng.normal(0, 0.03), 0.85, 1.2))
    return Identity(
        split=split, index=int(index),
        face_width=round(float(rng.uniform(0.255, 0.315)), 4),
        face_height=round(float(rng.uniform(0.345, 0.375)), 4),
        jaw=round(float(rng.uniform(0.78, 0.96)), 4),
        skin=_c(skin), hair_color=_c(hair),
        hair_style=int(rng.choice(len(synth_face.HAIR_STYLES), p=(0.22, 0.2, 0.12, 0.12, 0.12, 0.14, 0.08))),
        hair_volume=round(float(rng.uniform(0.94, 1.06)), 4),
        eye_color=_c(eye), eye_size=round(float(rng.uniform(0.88, 1.15)), 4),
        eye_spacing=round(float(rng.uniform(0.112, 0.136)), 4),
        brow_thickness=round(float(rng.uniform(0.75, 1.35)), 4),
        lip_color=_c(lip), nose_length=round(float(rng.uniform(0.9, 1.12)), 4),
        background=bg1, background2=bg2,
        background_pattern=int(rng.integers(len(synth_face.BACKGROUND_PATTERNS))),
        background_angle=round(float(rng.uniform(0.0, 2 * np.pi)), 4),
        shirt_color=_hsv(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.9)),
        f0=round(f0, 2), formant_scale=round(formant_scale, 4),
        speaking_rate=round(float(rng.uniform(0.8, 1.25)), 4),
    )


def _emotion_index(emotion) -> int:
    e = int(emotion)
    if not 0 <= e < len(EMOTIONS):
        raise ValueError(f"emotion must be an index 0..{len(EMOTIONS) - 1} into {EMOTIONS}, got {emotion}")
    return e


# ------------------------------------------------------------------------------------------------
# Vocal track: speech and the mouth it drives
# ------------------------------------------------------------------------------------------------

@dataclass
class VocalTrack:
    """What the mouth does, driven by speech: a function of the audio at offset 0 by construction."""
    audio: np.ndarray     # float32 [S], S = T * samples_per_frame: clean speech (no background noise), peak <= 1
    mouth: np.ndarray     # float32 [T, 5]: opening, width, rounding, teeth, tongue (0..1); mean of the
    #                       co-articulated targets at 4 sub-frame times around frame t's centre
    text: str             # the words spoken, space separated, lowercase
    phonemes: list        # (phoneme, start_s, end_s); silences are the gaps

    @property
    def n_frames(self) -> int:
        return int(self.mouth.shape[0])


def speak(identity: Identity, n_frames: int, rng: np.random.Generator, emotion: int = 0) -> VocalTrack:
    """Sentences from VOCABULARY spoken by `identity` over `n_frames` frames, and the mouth track."""
    name = EMOTIONS[_emotion_index(emotion)]
    utt = synth_speech.utterance(int(n_frames), rng, identity.speaking_rate, name)
    audio = synth_speech.synthesize(utt, TIMING.frames_to_samples(int(n_frames)), rng, identity.f0,
                                    identity.formant_scale, name)
    mouth = synth_speech.mouth_track(utt, int(n_frames), name)
    phonemes = [(p, round(a, 5), round(b, 5)) for p, a, b in utt.phones]
    return VocalTrack(audio=audio, mouth=mouth, text=" ".join(utt.words), phonemes=phonemes)


# ------------------------------------------------------------------------------------------------
# Ambient track: everything that moves independently of the audio
# ------------------------------------------------------------------------------------------------

@dataclass
class AmbientTrack:
    """Audio-independent motion of one clip."""
    eye_open: np.ndarray   # float32 [T]: 1 open .. 0 closed (blinks)
    pose: np.ndarray       # float32 [T, 6]: yaw, pitch, roll (radians), tx, ty (frame fraction), scale (~1)
    brow: np.ndarray       # float32 [T]: brow raise (0 rest, > 0 raised, < 0 lowered)
    emotion: int           # index into EMOTIONS
    actions: np.ndarray    # uint8 [len(ACTIONS)] multi-hot

    @property
    def n_frames(self) -> int:
        return int(self.eye_open.shape[0])


# Pose random walk (Ornstein-Uhlenbeck, time constant POSE_TAU_S): stationary std and hard limits.
POSE_TAU_S = 1.2
POSE_STD = (0.12, 0.07, 0.05, 0.022, 0.015, 0.025)
POSE_LIMIT = (0.45, 0.3, 0.3, 0.07, 0.05, 0.1)      # |yaw|, |pitch|, |roll|, |tx|, |ty|, |scale - 1|
EMOTION_BROW = {"neutral": 0.0, "happy": 0.15, "sad": 0.25, "angry": -0.45, "surprised": 0.9}


def _ou(rng: np.random.Generator, n: int, dims: int, tau_frames: float) -> np.ndarray:
    """Unit-variance Ornstein-Uhlenbeck paths [n, dims], started from the stationary distribution."""
    rho = math.exp(-1.0 / tau_frames)
    x = np.empty((n, dims))
    x[0] = rng.standard_normal(dims)
    w = rng.standard_normal((n, dims)) * math.sqrt(1 - rho * rho)
    for i in range(1, n):   # n is a few hundred: cheaper than importing scipy.signal
        x[i] = rho * x[i - 1] + w[i]
    return x


def _window(rng: np.random.Generator, t: np.ndarray, total: float) -> np.ndarray:
    """Smooth 0..1 envelope over a random window covering 60-100% of the clip (0.25 s fades)."""
    length = total * rng.uniform(0.6, 1.0)
    start = rng.uniform(0.0, total - length)
    fade = 0.25
    up = np.clip((t - start) / fade, 0.0, 1.0)
    down = np.clip((start + length - t) / fade, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * np.minimum(up, down)))


def _actions_array(actions) -> np.ndarray:
    a = list(actions)
    if not a:
        return np.zeros(len(ACTIONS), np.uint8)
    if all(isinstance(x, str) for x in a):
        unknown = sorted(set(a) - set(ACTIONS))
        if unknown:
            raise ValueError(f"unknown actions {unknown}; expected names from {ACTIONS}")
        return np.array([n in a for n in ACTIONS], np.uint8)
    arr = np.asarray(a, np.uint8).reshape(-1)
    if arr.shape != (len(ACTIONS),):
        raise ValueError(f"actions must be {len(ACTIONS)} flags for {ACTIONS} or a list of names")
    return (arr > 0).astype(np.uint8)


def ambient(n_frames: int, rng: np.random.Generator, emotion: int = 0, actions=None) -> AmbientTrack:
    """Blinks (Poisson), smooth head-pose random walk plus action oscillations, and brow movement.

    actions: None (each present with probability ACTION_PROB), a multi-hot [len(ACTIONS)], or names.
    """
    T = int(n_frames)
    fps = TIMING.fps
    emotion = _emotion_index(emotion)
    if T < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if actions is None:
        acts = (rng.random(len(ACTIONS)) < ACTION_PROB).astype(np.uint8)
    else:
        acts = _actions_array(actions)
    total = T / fps
    tc = (np.arange(T) + 0.5) / fps                                 # frame centre times

    # head pose: OU random walk, then periodic nod / shake / tilt
    pose = _ou(rng, T, 6, POSE_TAU_S * fps) * np.asarray(POSE_STD)
    for k, (name, amp, freq) in enumerate((("shake", (0.15, 0.28), (1.5, 2.5)),
                                           ("nod", (0.10, 0.18), (1.2, 2.2)),
                                           ("tilt", (0.12, 0.22), (0.4, 0.9)))):
        a, f, ph = rng.uniform(*amp), rng.uniform(*freq), rng.uniform(0, 2 * np.pi)
        env = _window(rng, tc, total)
        if acts[ACTIONS.index(name)]:
            pose[:, k] += a * env * np.sin(2 * np.pi * f * tc + ph)
    pose = np.clip(pose, -np.asarray(POSE_LIMIT), np.asarray(POSE_LIMIT))
    pose[:, 5] += 1.0

    # blinks: Poisson process (mean gap 2.5-5 s; 0.45-0.8 s with "blinks"), each 100-300 ms
    mean_gap = rng.uniform(0.45, 0.8) if acts[ACTIONS.index("blinks")] else rng.uniform(2.5, 5.0)
    closed = np.zeros(T)
    b0 = -rng.uniform(0.0, mean_gap)
    while True:
        b0 += rng.exponential(mean_gap)
        dur = rng.uniform(0.1, 0.3)
        if b0 >= total:
            break
        tau = (tc - b0) / dur
        inside = (tau > 0) & (tau < 1)
        closed[inside] = np.maximum(closed[inside], np.clip(1.6 * np.sin(np.pi * tau[inside]), 0.0, 1.0))
        b0 += dur
    eye_open = 1.0 - closed

    # brows: slow wander + occasional raises + the emotion's set point
    brow = 0.15 * _ou(rng, T, 1, 0.8 * fps)[:, 0] + EMOTION_BROW[EMOTIONS[emotion]]
    t_f = -rng.uniform(0.0, 4.0)
    while True:
        t_f += rng.exponential(4.0)
        if t_f >= total:
            break
        dur, amp = rng.uniform(0.3, 0.8), rng.uniform(0.4, 1.0)
        tau = np.clip((tc - t_f) / dur, 0.0, 1.0)
        brow += amp * np.sin(np.pi * tau) ** 2
    brow = np.clip(brow, -0.7, 1.6)
    return AmbientTrack(eye_open=eye_open.astype(np.float32), pose=pose.astype(np.float32),
                        brow=brow.astype(np.float32), emotion=emotion, actions=acts)


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------

def render(identity: Identity, amb: AmbientTrack, voc: VocalTrack | np.ndarray, size: int = IMG_SIZE):
    """Draw `identity` with the ambient motion `amb` and the mouth of `voc` (a VocalTrack or a mouth
    array [T, 5]): the counterfactual render. Returns frames uint8 [T, size, size, 3], face_mask bool
    [T, size, size] (face ellipse, mouth included) and mouth_mask bool [T, size, size] (the lower face
    below the nose, inside the face: everything the vocal track changes lies in it)."""
    mouth = voc.mouth if isinstance(voc, VocalTrack) else np.asarray(voc, np.float32)
    if mouth.ndim != 2 or mouth.shape[1] != len(MOUTH_CHANNELS):
        raise ValueError(f"mouth must be [T, {len(MOUTH_CHANNELS)}], got {mouth.shape}")
    if len(mouth) != amb.n_frames:
        raise ValueError(f"ambient track has {amb.n_frames} frames but the mouth track has {len(mouth)}")
    if int(size) < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    smile = bool(amb.actions[ACTIONS.index("smile")])
    return synth_face.render_frames(identity, amb.pose, amb.eye_open, amb.brow, mouth,
                                    EMOTIONS[amb.emotion], smile, int(size))


# ------------------------------------------------------------------------------------------------
# Clips
# ------------------------------------------------------------------------------------------------

def _r(x, nd: int = 4):
    return np.round(np.asarray(x, np.float64), nd).tolist()


@dataclass
class Clip:
    frames: np.ndarray       # uint8 [T, H, W, 3]
    audio: np.ndarray        # float32 [S], S = T * samples_per_frame: speech + background noise
    face_mask: np.ndarray    # bool [T, H, W]
    mouth_mask: np.ndarray   # bool [T, H, W]
    vocal: VocalTrack
    ambient: AmbientTrack
    identity: Identity
    meta: dict = field(default_factory=dict)  # source, split, index, seed, identity, fps, start_s, ...

    def labels(self) -> dict:
        """JSON-able ground truth of every factor (per-frame lists have T entries)."""
        a = self.ambient
        return {
            "identity": self.identity.index,
            "identity_name": self.identity.name,
            "emotion": EMOTIONS[a.emotion],
            "emotion_id": int(a.emotion),
            "actions": [n for n, on in zip(ACTIONS, a.actions) if on],
            "action_flags": [int(x) for x in a.actions],
            "text": self.vocal.text,
            "phonemes": [[p, s, e] for p, s, e in self.vocal.phonemes],
            "mouth_open": _r(self.vocal.mouth[:, 0]),
            "mouth": _r(self.vocal.mouth),
            "eye_open": _r(a.eye_open),
            "brow": _r(a.brow),
            "pose": _r(a.pose, 5),
        }


def make_clip(split: str, index: int, seconds: float = 4.0, size: int = IMG_SIZE, seed: int = 0,
              identity_index: int | None = None, emotion: int | None = None,
              snr_db: float | None = None) -> Clip:
    """Clip `index` of `split`: deterministic in all arguments.

    identity_index defaults to index % SPLIT_IDENTITIES[split]; emotion (and the actions) are random
    per clip when None; background noise at a random SNR in SNR_RANGE_DB when snr_db is None
    (snr_db=float("inf") for none).
    """
    code = _split_code(split)
    T = TIMING.seconds_to_frames(seconds)
    if T < 1:
        raise ValueError(f"seconds={seconds} gives no frames at {TIMING.fps} fps")
    ss = np.random.SeedSequence([_STREAM_CLIP, code, int(index), int(seed)])
    r_choice, r_speech, r_amb, r_noise = (np.random.default_rng(s) for s in ss.spawn(4))
    ident_i = int(index) % SPLIT_IDENTITIES[split] if identity_index is None else int(identity_index)
    identity = get_identity(split, ident_i)
    emo = int(r_choice.integers(len(EMOTIONS))) if emotion is None else int(emotion)
    snr = float(r_choice.uniform(*SNR_RANGE_DB)) if snr_db is None else float(snr_db)

    voc = speak(identity, T, r_speech, emo)
    amb = ambient(T, r_amb, emo)
    frames, face_mask, mouth_mask = render(identity, amb, voc, size)

    audio = voc.audio.copy()
    if math.isfinite(snr):
        active = np.zeros(len(audio), bool)
        for _, a, b in voc.phonemes:
            active[int(a * TIMING.sample_rate):int(b * TIMING.sample_rate)] = True
        ref = float(np.sqrt(np.mean(audio[active] ** 2))) if active.any() else 0.05
        noise = synth_speech.background_noise(len(audio), r_noise)
        audio += noise * np.float32(max(ref, 1e-3) / 10 ** (snr / 20))
        peak = float(np.abs(audio).max())
        if peak > 0.99:
            audio *= np.float32(0.99 / peak)
    meta = {"source": "synthtalk", "split": split, "index": int(index), "seed": int(seed),
            "identity": ident_i, "fps": TIMING.fps, "sample_rate": TIMING.sample_rate, "start_s": 0.0,
            "seconds": T / TIMING.fps, "size": int(size), "snr_db": snr if math.isfinite(snr) else None}
    return Clip(frames=frames, audio=audio.astype(np.float32), face_mask=face_mask,
                mouth_mask=mouth_mask, vocal=voc, ambient=amb, identity=identity, meta=meta)


# ------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------

def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def write_clip(clip: Clip, out_dir, name: str, mp4: bool = False) -> list[Path]:
    """Write one clip. mp4=False: name.npz (frames, audio, face_mask, mouth_mask) + name.json;
    mp4=True: name.mp4 (H.264 + AAC), name.wav and name.json. The json holds {"meta", "labels"}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if mp4:
        paths.append(write_video(out / f"{name}.mp4", clip.frames, TIMING.fps, clip.audio,
                                 TIMING.sample_rate))
        paths.append(write_wav(out / f"{name}.wav", clip.audio, TIMING.sample_rate))
    else:
        p = out / f"{name}.npz"
        with open(p, "wb") as f:
            np.savez_compressed(f, frames=clip.frames, audio=clip.audio, face_mask=clip.face_mask,
                                mouth_mask=clip.mouth_mask)
        paths.append(p)
    p = out / f"{name}.json"
    _write_json(p, {"meta": clip.meta, "labels": clip.labels()})
    paths.append(p)
    return paths


def write_dataset(out_dir, clips: int, split: str = "train", seconds: float = 4.0, seed: int = 0,
                  size: int = IMG_SIZE, mp4: bool = False, progress: bool = True) -> dict:
    """Write clips 0..clips-1 of `split` (named {split}_{i:06d}) and index.json; returns the index."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _split_code(split)
    entries = []
    for i in tqdm(range(int(clips)), desc=f"synthtalk {split}", unit="clip", file=sys.stderr,
                  disable=not progress):
        clip = make_clip(split, i, seconds=seconds, size=size, seed=seed)
        name = f"{split}_{i:06d}"
        files = write_clip(clip, out, name, mp4=mp4)
        lab = clip.labels()
        entries.append({"name": name, "files": [p.name for p in files], "identity": lab["identity"],
                        "emotion": lab["emotion"], "emotion_id": lab["emotion_id"],
                        "actions": lab["actions"], "text": lab["text"]})
    index = {"source": "synthtalk", "split": split, "clips": entries, "seed": int(seed),
             "seconds": TIMING.seconds_to_frames(seconds) / TIMING.fps, "size": int(size),
             "fps": TIMING.fps, "sample_rate": TIMING.sample_rate, "mp4": bool(mp4),
             "n_identities": SPLIT_IDENTITIES[split], "emotions": list(EMOTIONS),
             "actions": list(ACTIONS)}
    _write_json(out / "index.json", index)
    return index


def load_clip_files(path) -> dict:
    """Read a clip written by write_clip(mp4=False): `path` is the .npz, the .json or the shared stem.
    Returns {"frames", "audio", "face_mask", "mouth_mask", "labels", "meta"}."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".npz", ".json", ".mp4", ".wav") else p
    npz, js = stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")
    if not npz.exists():
        mp4 = stem.with_name(stem.name + ".mp4").exists()
        hint = " (an mp4 clip: read it with synclipmae.media.decode)" if mp4 else ""
        raise FileNotFoundError(f"{npz}: no such SynthTalk clip{hint}")
    with np.load(npz) as z:
        out = {k: z[k] for k in ("frames", "audio", "face_mask", "mouth_mask")}
    info = json.loads(js.read_text()) if js.exists() else {}
    out["labels"] = info.get("labels", {})
    out["meta"] = info.get("meta", {})
    return out
