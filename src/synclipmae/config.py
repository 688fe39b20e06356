"""Typed configuration: dataclass defaults, YAML files and `key=value` overrides.

Every field the paper does not fix is marked `# default` with the reason; `# paper` marks the
paper's own choices. Unknown keys and values of the wrong type are `ConfigError`s whose message
names the key and the closest valid one, so the CLI can print one line and exit 2.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


IMG_SIZE = 96  # default: the side of a face crop in pixels (the tiny preset's; data and prepare default to it)


class ConfigError(ValueError):
    """A one-line, user-facing configuration error."""


@dataclass
class AudioConfig:
    encoder: str = "mel"          # default: "mel" (log-mel + conv stem + transformer); paper option: "wav2vec2"
    n_mels: int = 80              # default: mel bins
    width: int = 192              # default: audio transformer width
    depth: int = 2                # default: audio transformer blocks
    heads: int = 4
    context: int = 3              # default: a_t attends to audio frames t-3..t+3 (banded attention); local
                                  # context lets a_t see the whole phoneme around t, which shortens the ln N plateau
    wav2vec2: str = ""            # paper option: local directory or hub id of a wav2vec 2.0 model (frozen)


@dataclass
class ModelConfig:
    variant: str = "synclipmae"   # "synclipmae" | "syncnet-style" (contrastive only, one token, no decoder)
                                  # | "mae-only" (no contrastive term): the two baselines of the demo
    img_size: int = IMG_SIZE
    patch_size: int = 8
    width: int = 192
    depth: int = 6
    heads: int = 3
    mlp_ratio: float = 4.0
    dec_width: int = 128
    dec_depth: int = 2
    dec_heads: int = 4
    proj_dim: int = 128           # default: width of the normalised projection heads used by L_con and sync
    audio: AudioConfig = field(default_factory=AudioConfig)


@dataclass
class MaskConfig:
    ratio_a: float = 0.75         # paper: uniform random masking of view A
    mouth_prob: float = 0.25      # default: view A also masks the whole lower face with this probability
    ratio_b: float = 0.5          # default (paper: face-aware, ratio unstated): masking ratio of view B
    face_bias: float = 0.5        # default: subtracted from the noise of face patches in view B (kept more often)
    mouth_bias: float = 0.5       # default: extra bias for lower-face patches in view B (mouth-weighted z_voc view)
    jitter: float = 0.2           # paper: photometric jitter of view B; default strength (0 disables)
    motion_view: str = "frequent" # default: at inference z_voc and z_amb read the patches view B kept most
                                  # often in training, as many as view B keeps ("all": every patch)
    identity_view: str = "outside-mouth"  # default: at inference z_id reads the patches that lay in the lower
                                  # face in under half as many training frames as the patch most often there ("all":
                                  # every patch); z_id then cannot follow the mouth (mouth R^2 from z_id 0.31-0.45
                                  # -> -0.04 on seed-1 checkpoints)


@dataclass
class LossConfig:
    w_rec: float = 1.0            # default weight of L_rec_video + L_rec_audio
    w_con: float = 1.0            # default weight of L_con
    w_dec: float = 0.1            # default weight of L_dec
    w_amb: float = 0.0            # default 0 = off (the demo sets 0.3): weight of L_amb, z_amb of view A finding its own
                                  # frame among view B's z_amb of the clip's frames; z_amb then encodes what changes
                                  # within a clip (blink AUC 0.62-0.80 -> 0.95, docs/benchmarks.md)
    amb_temperature: float = 0.3  # default: L_amb's fixed temperature; at 0.1 its gradient was 2-3x that of the other
                                  # losses together and sync and z_voc's mouth fell (docs/benchmarks.md)
    rec_frames: int = 0           # default 0 = all: frames per clip that view A reconstructs; fewer makes a
                                  # CPU step cheaper while L_con still sees every frame
    norm_pix: bool = True         # default: per-patch normalised pixel targets (MAE norm_pix_loss)
    negatives: str = "batch"      # paper: "batch" = every other frame of the batch; "clip" = only other
                                  # frames of the same clip (the hard, sync-only negatives)
    exclude_radius: int = 1       # default: same-clip frames within 1 of t leave the InfoNCE denominator
    center: bool = True           # default: sync embeddings are centred over each sequence's frames before
                                  # L2 normalisation; without it L_con sits at ln N (all cosines ~1)
    temperature: float = 0.07     # default: initial temperature of L_con (learnable)
    temperature_lr_mult: float = 1.0  # default: learning-rate multiplier of the temperature


@dataclass
class DataConfig:
    source: str = "synthtalk"     # "synthtalk" (built in) or a folder/glob of `prepare` shards
    clips: int = 160              # default: SynthTalk training clips generated for pretraining
    seconds: float = 4.0          # default: length of each generated SynthTalk clip
    identities: int = 0           # default 0 = all SynthTalk train identities
    frames: int = 16              # default: T, frames per training clip (paper trains on short clips)
    workers: int = 0              # data-loader worker processes (0 = in the training process)
    synth_share: float = 0.0      # default 0 = off: with shards as data.source, this share of the steps trains on
                                  # generated SynthTalk clips instead (data.clips, data.seconds), interleaved evenly


@dataclass
class AugmentConfig:
    """Per-clip augmentation of training clips (data/augment.py); all our defaults, off unless prob > 0."""
    prob: float = 0.0             # default 0 = off: share of training clips augmented
    scale: float = 0.10           # default: the crop side is scaled by 1 +- scale
    shift: float = 0.06           # default: the crop centre moves by +- shift of the side
    min_side: int = 32            # default: frames are shrunk to a side in [min_side, img_size] and enlarged back
    jpeg_quality: tuple[int, int] = (30, 95)  # default: JPEG quality range (0,0 = no codec step)
    gain_db: float = 12.0         # default: audio gain +- dB
    snr_db: tuple[float, float] = (5.0, 40.0)  # default: white-noise SNR range in dB


@dataclass
class TrainConfig:
    batch_size: int = 8           # default: clips per step per rank
    steps: int = 1000             # total optimiser steps (the schedule's length when minutes == 0)
    minutes: float = 0.0          # default 0 = off; > 0 ends training after this wall time and runs the
                                  # schedule on elapsed time instead of steps
    min_steps_per_minute: float = 0.0  # default 0 = off; with minutes > 0, a floor of this many steps per minute of
                                  # budget: a slow or busy machine trains on past the minutes until it has them
    lr: float = 1e-3              # default: peak AdamW learning rate
    min_lr: float = 1e-5
    warmup: float = 0.05          # default: fraction of the schedule spent in linear warm-up
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 0
    init: str = ""                # default "" = random: a checkpoint folder, or a run folder (its latest checkpoint),
                                  # whose weights start a new run (a resumed run ignores it)
    out: str = "runs/pretrain"
    ckpt_every: int = 100         # steps between atomic checkpoints (and one at the end)
    log_every: int = 10
    strategy: str = "ddp"         # "ddp" | "fsdp" under torchrun; ignored on one process
    compile: bool = False
    progress: bool = True


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# dict / YAML / key=value  ->  Config


def did_you_mean(key: str, options) -> str:
    """The hint ' (did you mean 'X'?)' with the option X closest to `key`, or '' when there are none."""
    match = difflib.get_close_matches(key, list(options), n=1, cutoff=0.0)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _coerce(value: Any, current: Any, key: str) -> Any:
    if isinstance(current, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        elif isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' needs true or false, got {value!r}")
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        try:
            number = float(value) if isinstance(value, str) else value
            if isinstance(current, int):
                if float(number) != int(float(number)):
                    raise ValueError
                return int(float(number))
            return float(number)
        except (TypeError, ValueError):
            kind = "an integer" if isinstance(current, int) else "a number"
            raise ConfigError(f"config key '{key}' needs {kind}, got {value!r}") from None
    if isinstance(current, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        if current and all(isinstance(c, str) for c in current):  # a list of names: any length
            return tuple(str(v).strip() for v in items)
        if len(items) != len(current):
            raise ConfigError(f"config key '{key}' needs {len(current)} comma-separated values, got {value!r}")
        return tuple(_coerce(v, c, key) for v, c in zip(items, current))
    if isinstance(current, str):
        return str(value)
    return value


def _apply(obj: Any, updates: dict, prefix: str = "") -> None:
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in names:
            valid = [f"{prefix}{n}" for n in names]
            raise ConfigError(f"unknown config key '{full}'{did_you_mean(full, valid)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{full}' is a group; set its fields, e.g. '{full}.{dataclasses.fields(current)[0].name}=...'")
            _apply(current, value, prefix=f"{full}.")
        else:
            setattr(obj, key, _coerce(value, current, full))


def _all_keys(obj: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _all_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def parse_overrides(pairs: list[str], base: Config | None = None) -> dict:
    """['train.lr=1e-3', 'model.depth=4'] -> nested dict; a pair without '=' is a ConfigError."""
    nested: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override '{pair}' is not key=value (e.g. train.lr=3e-4)")
        key, value = pair.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) == 1 and base is not None:
            raise ConfigError(f"unknown config key '{key}'{did_you_mean(key, _all_keys(base))}")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def apply_overrides(obj: Any, pairs: list[str]) -> Any:
    """Set fields of any config dataclass from ['key=value', 'group.key=value', ...]; returns obj.
    An unknown key or a bad value is a ConfigError naming it (and the closest valid key)."""
    _apply(obj, parse_overrides(pairs))
    return obj


def build_config(path: str | Path | None = None, overrides: list[str] | dict | None = None,
                 base: dict | None = None) -> Config:
    """Defaults, then `base` (e.g. a preset), then the YAML file at `path`, then `overrides`
    (['train.lr=3e-4', ...] or a nested dict); later wins."""
    cfg = Config()
    if base:
        _apply(cfg, base)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")

        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of groups (model:, train:, ...)")
        _apply(cfg, data)
    if overrides:
        _apply(cfg, parse_overrides(overrides, cfg) if isinstance(overrides, list) else overrides)
    validate(cfg)
    return cfg


def config_from_dict(data: dict) -> Config:
    cfg = Config()
    _apply(cfg, data)
    return cfg


def validate(cfg: Config) -> None:
    m = cfg.model
    choices = {
        "model.variant": (m.variant, ("synclipmae", "syncnet-style", "mae-only")),
        "model.audio.encoder": (m.audio.encoder, ("mel", "wav2vec2")),
        "train.strategy": (cfg.train.strategy, ("ddp", "fsdp")),
        "loss.negatives": (cfg.loss.negatives, ("batch", "clip")),
        "mask.motion_view": (cfg.mask.motion_view, ("frequent", "all")),
        "mask.identity_view": (cfg.mask.identity_view, ("outside-mouth", "all")),
    }
    for key, (value, options) in choices.items():
        if value not in options:
            raise ConfigError(f"config key '{key}' must be one of {', '.join(options)}; got '{value}'{did_you_mean(value, options)}")
    if m.img_size % m.patch_size:
        raise ConfigError(f"model.img_size ({m.img_size}) must be a multiple of model.patch_size ({m.patch_size})")
    if m.width % m.heads or m.dec_width % m.dec_heads or m.audio.width % m.audio.heads:
        raise ConfigError("model widths must be multiples of their head counts (model.width/heads, dec_width/dec_heads, audio.width/heads)")
    for key in ("ratio_a", "ratio_b", "mouth_prob"):
        if not 0.0 <= getattr(cfg.mask, key) < 1.0:
            raise ConfigError(f"config key 'mask.{key}' must be in [0, 1)")
    if cfg.train.min_steps_per_minute < 0:
        raise ConfigError(f"config key 'train.min_steps_per_minute' must be >= 0; got {cfg.train.min_steps_per_minute}")
    if not 0.0 <= cfg.data.synth_share < 1.0:
        raise ConfigError(f"config key 'data.synth_share' must be in [0, 1); got {cfg.data.synth_share}")
    if cfg.data.frames < 2 or cfg.train.batch_size < 1:
        raise ConfigError("data.frames must be >= 2 and train.batch_size >= 1")


def config_json(cfg: Config) -> str:
    return json.dumps(cfg.to_dict(), indent=2)
