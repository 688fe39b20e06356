"""The dubbing generator (DESIGN §2 "Downstream interface" 4): lower-face inpainting on a pretrained
SyncLipMAE, conditioned on (z_id, z_amb, c) through the shared decoder's cross-attention.

One frame t of a segment, in the order the code runs (`Dubber.generate`):

    visible   = the face crop with the repaint region (`mouth_mask`, the lower face) hidden: every patch
                it touches is masked, and the pretrained encoder sees only the visible patches within
                `enc_context` patches of them (MAE-style dropping; frames with fewer are padded and the
                padding is never attended, so every frame's result is its own)
    z_id      = mean over the segment's frames of their (mouth-hidden) z_id: "a reference frame of the
                same video", averaged so no single frame's pose or blink dominates      (default)
    z_amb(t)  = the target frame's own z_amb, from the same mouth-hidden encoding, so it cannot carry
                the old mouth
    c(t)      = a_t (`encode_audio` of the new speech: audio-driven) or z_voc(t) of a driving face
                crop (video-driven): the two interchangeable conditions of pretraining (paper)
    prev      = the previous segment's last generated frame, encoded (all patches): its z_id, z_voc
                and z_amb and its patch tokens at the decoder window's positions become extra memory
                tokens of the cross-attention (its mouth state, and how the lower face looks: skin,
                lips, teeth). A video's first segment uses the source frame just after it instead
                (a reference frame of the same video); learned "none" tokens exist for training
                (paper: segments conditioned on the previous segment's last frame; form default)
    decoder   = the pretrained decoder over a window of the patch grid: the hidden patches' bounding
                box plus `context` patches around it (visible tokens + mask tokens; the rest of the
                face reaches it through z_id and z_amb), cross-attention to {z_id, z_amb, c, prev},
                then new heads: a coarse patch prediction added to a smooth fill of the hidden
                pixels from the known ones around them (push-pull; by default the pretrained
                per-patch-normalised head's shape rescaled by a predicted mean and std plus a
                residual) and a few feature channels per pixel (`feat_head`)
    pixels    = a three-scale conv U-Net (`MouthNet`) over a box around the repaint region (`box` of
                the crop): its inputs are the fill, the mask, a reference frame of the same face (how
                its skin, lips and teeth look: by default the source frame at the segment's start,
                `reference`), the coarse prediction and the decoder's
                features; (c, z_amb) modulate its bottleneck (FiLM) and add a learned spatial code
                there. It draws the mouth as a residual on the fill (default)
    output    = known pixels outside the mask, the U-Net's pixels inside it (exactly)

`models.dubbing.dub_crops` runs this on uint8 crops in segments of `DubConfig.segment` frames, each
conditioned on the previous segment's last generated frame. Fine-tuning
(`synclipmae.train.dubber.finetune_dubber`) trains the decoder and the new parts on SynthTalk train
identities with masked reconstruction and a sync loss from the frozen pretrained model. Everything
not fixed by the paper is a `DubConfig` field marked `# default`.

Checkpoint: a directory with config.json {"format": "synclipmae-dubber", "synclipmae": <the
SyncLipMAE config>, "dub": <DubConfig>, "meta": {...}} and model.safetensors (no pickle).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synclipmae.config import ConfigError, config_from_dict, config_json
from synclipmae.models.layers import init_weights
from synclipmae.models.masking import patch_fraction
from synclipmae.models.synclipmae import COUNT_BUFFERS, PIXEL_STD, SyncLipMAE
from synclipmae.weights import latest_checkpoint, load_weights, save_weights

FORMAT = "synclipmae-dubber"


@dataclass
class DubConfig:
    """The generator's own settings. The paper fixes none of them: every field is a default."""
    # ---- generator
    segment: int = 16              # default: frames generated per segment (each conditioned on the last frame before it)
    mask_dilation: int = 2         # default: px callers grow the lower-face mask by (`dilate_masks`) so the new
                                   # mouth's jaw and lip edges fall inside the repainted region
    context: int = 1               # default: visible patches around the hidden ones that the decoder attends to
    enc_context: int = 3           # default: the encoder sees the visible patches within this many patches of the
                                   # hidden ones (z_id, z_amb and the decoder's visible tokens come from the lower
                                   # and middle face; 0 = the whole visible face, slower)
    feat_channels: int = 4         # default: per-pixel feature channels the decoder hands to the pixel U-Net
    box: float = 0.58              # default: side of the pixel U-Net's box around the repaint region, as a fraction of
                                   # the crop (56 px at 96, 76 at 128; SynthTalk's dilated lower face is <= 48 px at 96);
                                   # mask pixels outside the box keep the smooth fill
    unet_width: int = 32           # default: channels of the pixel U-Net at full resolution (2x, 4x at 1/2, 1/4)
    reference: str = "segment"     # default: the pixel U-Net's reference frame (how this face looks): "segment" = the
                                   # source frame at the segment's start (a frame of the video itself, never a
                                   # generated one, so errors cannot build up from segment to segment; Wav2Lip-style);
                                   # "previous" = the previous segment's last generated frame (its errors are copied on)
    reuse_norm_head: bool = True   # default: pixels = the pretrained per-patch-normalised head's output, scaled by
                                   # a predicted per-patch std and shifted by a predicted mean, plus a learned
                                   # residual (starts from the mouths pretraining learned to draw); False: a new
                                   # absolute-pixel head alone
    # ---- fine-tuning
    minutes: float = 15.0          # default: wall-clock fine-tuning budget
    lr: float = 2e-3               # default: peak AdamW learning rate (linear warm-up, cosine decay over the budget)
    warmup: float = 0.05           # default: fraction of the budget spent warming up
    weight_decay: float = 0.01     # default
    batch_size: int = 4            # default: clips per step (each `frames` long)
    frames: int = 8                # default: frames per training clip (z_id is their mean, like a segment's)
    train_clips: int = 48          # default: SynthTalk train clips generated for fine-tuning (plus one driving
                                   # render of the same speech by another identity each)
    clip_seconds: float = 2.0      # default: length of each generated training clip
    video_prob: float = 0.5        # default: chance a training clip is conditioned on a driving render's z_voc
                                   # (video-driven) instead of its audio tokens a_t (audio-driven)
    prev_prob: float = 0.9         # default: chance a training clip gets a previous frame (a ground-truth frame
                                   # 1-`frames` frames before or after it); otherwise the "none" tokens
    self_prev_prob: float = 0.5    # default: chance that previous frame is the model's own redraw of it (no
                                   # gradient), as at inference, where it is the last generated frame
    w_rec: float = 1.0             # default: weight of the MSE of the output inside the mask
    w_coarse: float = 0.5          # default: weight of the MSE of the decoder's patch prediction inside the mask
    w_l1: float = 0.5              # default: weight of the L1 of the output inside the mask (sharper mouths)
    w_sync: float = 0.01           # default: weight of the sync loss (InfoNCE over a clip's frames between the
                                   # output's z_voc and the condition's a_t, frozen pretrained model)
    sync_every: int = 4            # default: compute the sync loss every this many steps, on the batch's first
                                   # clip (it costs an encoder forward + backward over the output frames)
    train_encoder: bool = False    # default: the pretrained encoders stay frozen (conditions and visible tokens
                                   # keep their pretrained meaning); only the decoder and the new parts train
    log_every: int = 5             # default: steps between lines of metrics.jsonl

    def validate(self) -> "DubConfig":
        """Raise ConfigError on a value the generator cannot use; returns self."""
        if self.reference not in ("segment", "previous"):
            raise ConfigError(f"reference must be 'segment' or 'previous', got '{self.reference}'")
        if not 0 < self.box <= 1 or self.segment < 1 or self.frames < 2 or self.batch_size < 1 or self.unet_width < 1:
            raise ConfigError("DubConfig needs 0 < box <= 1, segment >= 1, frames >= 2, batch_size >= 1, unet_width >= 1")
        return self


def dilate_masks(masks: np.ndarray, px: int) -> np.ndarray:
    """bool [T, H, W] -> bool [T, H, W] grown by `px` pixels (square structuring element)."""
    masks = np.asarray(masks, bool)
    if px <= 0:
        return masks.copy()
    m = torch.from_numpy(masks).float()[:, None]
    return (F.max_pool2d(m, 2 * px + 1, stride=1, padding=px)[:, 0] > 0).numpy()


def push_pull_fill(img: torch.Tensor, known: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """Smooth fill of the unknown pixels from the known ones (push-pull: a pyramid of known-weighted
    averages, pulled back up with bilinear upsampling). img float [N, H, W, 3]; known bool [N, H, W].
    Returns [N, H, W, 3]: the known pixels unchanged, the others filled."""
    k = known[:, None].to(img.dtype)                                            # (N, 1, H, W)
    x = img.permute(0, 3, 1, 2) * k                                             # (N, 3, H, W)
    pyramid = [(x, k)]
    for _ in range(levels):
        x, k = F.avg_pool2d(x, 2, ceil_mode=True), F.avg_pool2d(k, 2, ceil_mode=True)
        pyramid.append((x, k))
    x, k = pyramid[-1]
    cur = x / k.clamp_min(1e-6) + (k <= 0).to(x.dtype) * 0.5                  # mid-grey where nothing is known
    for x, k in reversed(pyramid[:-1]):
        up = F.interpolate(cur, size=x.shape[-2:], mode="bilinear", align_corners=False)
        cur = x + (1 - k) * up                                                  # known average, weighted by coverage
    return cur.permute(0, 2, 3, 1)


def encode_subset(net: SyncLipMAE, frames: torch.Tensor, keep: torch.Tensor) -> dict:
    """The encoder of `net` over the patches `keep` bool [N, L] of frames [N, H, W, 3] (uint8 or
    [0, 1] float): MAE-style dropping with a per-frame count (shorter frames padded, the padding never
    attended). Returns {prompt name: [N, D], "patches": [N, L, D] (zeros where not kept)}."""
    N, L = keep.shape
    n = keep.sum(1)
    Lk = max(int(n.max()), 1)
    ids = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :Lk]    # kept first, in patch order
    valid = torch.arange(Lk, device=keep.device)[None] < n[:, None]            # (N, Lk)
    x = net.input_patches(SyncLipMAE.to_unit(frames))     # (N, L, P*P*3)
    x = torch.gather(x, 1, ids[..., None].expand(-1, -1, x.shape[-1]))
    x = net.patch_embed(x) + net.pos_embed.expand(N, -1, -1).gather(1, ids[..., None].expand(-1, -1, net.pos_embed.shape[-1]))
    K = len(net.prompt_names)
    x = torch.cat([net.prompts[None].expand(N, -1, -1), x], dim=1)            # (N, K+Lk, D)
    attn = torch.cat([valid.new_ones(N, K), valid], 1)[:, None, None, :]       # (N, 1, 1, K+Lk)
    for block in net.blocks:
        x = block(x, mask=attn)
    x = net.norm(x)
    out = {name: x[:, i] for i, name in enumerate(net.prompt_names)}
    tok = x[:, K:] * valid[..., None]
    out["patches"] = tok.new_zeros(N, L, tok.shape[-1]).scatter(1, ids[..., None].expand(-1, -1, tok.shape[-1]), tok)
    return out


def extent(any_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bool [N, n] -> (first, last) long [N]: the first and last True index of each row (n and -1
    for a row with none)."""
    n = any_.shape[1]
    idx = torch.arange(n, device=any_.device)
    return torch.where(any_, idx, n).min(1).values, torch.where(any_, idx, -1).max(1).values


def mask_boxes(mask: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """bool [N, H, W] -> top-left corners (y, x) long [N] of `side` x `side` boxes centred on each
    mask's bounding box and kept inside the frame (a frame with an empty mask: the centre)."""
    N, H, W = mask.shape

    def centre(any_: torch.Tensor, n: int) -> torch.Tensor:                     # (N, n) -> (N,)
        lo, hi = extent(any_)
        return torch.where(any_.any(1), (lo + hi + 1) // 2, n // 2)

    y = (centre(mask.any(2), H) - side // 2).clamp(0, H - side)
    x = (centre(mask.any(1), W) - side // 2).clamp(0, W - side)
    return y, x


def box_index(y: torch.Tensor, x: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Advanced indices (n, rows, cols), each broadcasting to [N, side, side], of the boxes at (y, x)."""
    r = torch.arange(side, device=y.device)
    return torch.arange(len(y), device=y.device)[:, None, None], (y[:, None] + r)[:, :, None], (x[:, None] + r)[:, None, :]


def _conv(ci: int, co: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(ci, co, 3, stride, 1), nn.GroupNorm(8 if co % 8 == 0 else 1, co), nn.GELU())


class MouthNet(nn.Module):
    """The pixel generator: a three-scale U-Net over the box around the repaint region (Wav2Lip-style
    inputs: the masked frame, the mask and a reference frame of the same face, plus the decoder's
    patch prediction and features). The per-frame condition (c, z_amb) enters at the quarter-resolution
    bottleneck twice: as FiLM (scale and shift per channel) and as a learned 7x7 spatial code (where
    the mouth's parts go). The last conv starts at zero: the output starts as the fill."""

    def __init__(self, in_ch: int, width: int, cond_dim: int, code_ch: int = 32):
        super().__init__()
        w = width
        self.enc1 = nn.Sequential(_conv(in_ch, w), _conv(w, w))                 # side
        self.enc2 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))      # side / 2
        self.enc3 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))  # side / 4
        self.cond_norm = nn.LayerNorm(cond_dim)
        self.film = nn.Linear(cond_dim, 2 * 4 * w)
        self.code = nn.Linear(cond_dim, code_ch * 7 * 7)
        self.mid = nn.Sequential(_conv(4 * w + code_ch, 4 * w), _conv(4 * w, 4 * w))
        self.dec2 = nn.Sequential(_conv(4 * w + 2 * w, 2 * w), _conv(2 * w, 2 * w))
        self.dec1 = nn.Sequential(_conv(2 * w + w, w), _conv(w, w))
        self.out = nn.Conv2d(w, 3, 3, padding=1)
        self.code_ch = code_ch
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x float [N, C, s, s] (s a multiple of 4), cond [N, cond_dim] -> residual [N, 3, s, s]."""
        up = lambda t, ref: F.interpolate(t, size=ref.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
        cond = self.cond_norm(cond)
        a = self.enc1(x)
        b = self.enc2(a)
        d = self.enc3(b)                                                        # (N, 4w, s/4, s/4)
        scale, shift = self.film(cond).chunk(2, -1)
        d = d * (1 + scale[..., None, None]) + shift[..., None, None]
        code = up(self.code(cond).view(-1, self.code_ch, 7, 7), d)
        d = self.mid(torch.cat([d, code], 1))
        u = self.dec2(torch.cat([up(d, b), b], 1))
        u = self.dec1(torch.cat([up(u, a), a], 1))
        return self.out(u)


class Dubber(nn.Module):
    """Lower-face inpainting generator built on a pretrained SyncLipMAE (encoder + shared decoder)."""

    def __init__(self, net: SyncLipMAE, cfg: DubConfig | None = None):
        super().__init__()
        if not net.has_decoder or "z_id" not in net.prompt_names:
            raise ValueError(f"dubbing needs a SyncLipMAE with z_id, z_amb and a decoder; variant "
                             f"'{net.cfg.model.variant}' has none")
        self.net = net
        self.cfg = (cfg or DubConfig()).validate()
        m, c = net.cfg.model, self.cfg
        p, Dd = net.patch, m.dec_width
        self.prev_proj = nn.Linear(m.width, Dd)                      # previous frame's tokens -> memory
        self.prev_type = nn.Parameter(torch.randn(1, 4, Dd) * 0.02)   # slots: z_id, z_voc, z_amb, patches
        self.prev_none = nn.Parameter(torch.randn(1, 4, Dd) * 0.02)   # the same when there is no previous frame
        self.pix_head = nn.Linear(Dd, p * p * 3)                      # absolute pixels (a residual with reuse_norm_head)
        self.stat_head = nn.Linear(Dd, 2)                             # per-patch mean and log-std of the pixels
        self.feat_head = nn.Linear(Dd, p * p * c.feat_channels)
        self.mouth = MouthNet(3 + 1 + 3 + 3 + c.feat_channels, c.unet_width, 2 * m.width)
        init_weights(self.prev_proj)
        init_weights(self.pix_head)
        init_weights(self.feat_head)
        nn.init.zeros_(self.stat_head.weight)
        with torch.no_grad():
            self.stat_head.bias.copy_(torch.tensor([0.0, -5.0]))      # pattern std 0.007: the output starts as the base
        nn.init.zeros_(self.pix_head.weight)
        self.set_trainable()

    # ------------------------------------------------------------------------------ construction
    @classmethod
    def from_synclipmae(cls, model: SyncLipMAE, cfg: DubConfig | None = None) -> "Dubber":
        """A new, untuned generator on a copy of `model` (the original is not modified)."""
        return cls(copy.deepcopy(model), cfg).eval()

    @property
    def img_size(self) -> int:
        return self.net.cfg.model.img_size

    @property
    def device(self) -> torch.device:
        return self.prev_type.device

    def set_trainable(self) -> None:
        """requires_grad: the decoder and the new parts; the encoders too with cfg.train_encoder."""
        self.requires_grad_(True)
        if not self.cfg.train_encoder:
            net = self.net
            for mod in (net.patch_embed, net.blocks, net.norm, net.audio, net.proj_v, net.proj_a):
                mod.requires_grad_(False)
            net.prompts.requires_grad_(False)
            net.logit_scale.requires_grad_(False)
        if not self.cfg.reuse_norm_head:
            self.net.dec_pred.requires_grad_(False)  # MAE's per-patch-normalised head: unused

    # ------------------------------------------------------------------------------ encode
    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float frames [N, H, W, 3] -> normalised patches [N, L, P*P*3]."""
        return self.net.input_patches(SyncLipMAE.to_unit(frames))

    def masked_patches(self, mask: torch.Tensor) -> torch.Tensor:
        """Pixel mask bool [N, H, W] -> bool [N, L]: the patches the repaint region touches."""
        return patch_fraction(mask, self.net.patch) > 0

    def encode_visible(self, frames: torch.Tensor, hidden: torch.Tensor) -> dict:
        """frames [N, H, W, 3]; hidden bool [N, L] (patches the encoder may not see). The pretrained
        encoder over the visible patches within cfg.enc_context patches of the hidden ones. Returns
        {"z_id", "z_voc", "z_amb": [N, D], "patches": [N, L, D] (zeros where not seen)}."""
        keep = ~hidden
        if self.cfg.enc_context > 0:
            ids, valid = self.window(hidden, self.cfg.enc_context)
            keep = keep & torch.zeros_like(hidden).scatter(1, ids, valid)
        return encode_subset(self.net, frames, keep)

    def encode_full(self, frames: torch.Tensor) -> dict:
        """frames [N, H, W, 3] -> the encoder's tokens over all patches (z_voc of driving crops, the
        previous frame's patch tokens, the sync loss's view of generated frames)."""
        return self.net.encode_patches(self.normalise(frames))

    def prev_memory(self, prev: torch.Tensor | None, n: int) -> torch.Tensor:
        """prev frames [n, H, W, 3] (or None: the "none" tokens) -> memory tokens [n, 3 + L, Dd]: its
        z_id, z_voc, z_amb, then its patch tokens with their positions (`decode` keeps the window's)."""
        pos = self.net.dec_pos + self.prev_type[:, 3:]                          # (1, L, Dd)
        if prev is None:
            none = self.prev_none
            return torch.cat([none[:, :3], none[:, 3:] + pos], 1).expand(n, -1, -1)
        tok = self.encode_full(prev)
        z = torch.stack([tok[k] for k in ("z_id", "z_voc", "z_amb")], 1)        # (n, 3, D)
        return torch.cat([self.prev_proj(z) + self.prev_type[:, :3], self.prev_proj(tok["patches"]) + pos], 1)

    def window(self, hidden: torch.Tensor, context: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's tokens per frame: the hidden patches' bounding box grown by `context`
        (default cfg.context) patches. hidden bool [N, L] -> ids long [N, Lw] (patch indices, row-major, padded) and
        valid bool [N, Lw] (False on padding). A frame with nothing hidden gets patch 0 alone."""
        N, L = hidden.shape
        g, ctx = self.net.grid, self.cfg.context if context is None else context
        grid = hidden.view(N, g, g)
        idx = torch.arange(g, device=hidden.device)

        def span(any_: torch.Tensor):                                           # (N, g) -> lo, hi (N,)
            lo, hi = extent(any_)
            return (lo - ctx).clamp_min(0), (hi + ctx).clamp_max(g - 1)

        r0, r1 = span(grid.any(2))
        c0, c1 = span(grid.any(1))
        inside = ((idx[None, :, None] >= r0[:, None, None]) & (idx[None, :, None] <= r1[:, None, None])
                  & (idx[None, None, :] >= c0[:, None, None]) & (idx[None, None, :] <= c1[:, None, None]))
        sel = inside.flatten(1)                                                 # (N, L)
        sel[:, 0] |= ~sel.any(1)
        n = sel.sum(1)
        Lw = int(n.max())
        ids = torch.argsort((~sel).to(torch.int8), dim=1, stable=True)[:, :Lw]   # selected first, in patch order
        valid = torch.arange(Lw, device=hidden.device)[None] < n[:, None]
        return ids, valid

    # ------------------------------------------------------------------------------ generate
    def decode(self, visible: dict, hidden: torch.Tensor, z_id: torch.Tensor, c: torch.Tensor,
               prev_mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared decoder on the window around the hidden patches: visible patch tokens + mask
        tokens, cross-attention to {z_id, z_amb, c} (the pretrained slots) plus the previous-frame
        memory. visible: encode_visible's dict over N frames (patches [N, L, D]); hidden bool [N, L];
        z_id, c float [N, D]; prev_mem [N, 3 + L, Dd] (`prev_memory`). Returns the difference to the base [N, L, P*P*3] in [0, 1] units and
        features [N, L, P*P*F] (zero outside the window)."""
        net = self.net
        ids, valid = self.window(hidden)                                        # (N, Lw) each
        gather = lambda t: torch.gather(t, 1, ids[..., None].expand(-1, -1, t.shape[-1]))  # noqa: E731
        x = net.dec_embed(gather(visible["patches"]))                           # (N, Lw, Dd)
        hid = torch.gather(hidden, 1, ids)[..., None]
        x = torch.where(hid, net.mask_token.to(x.dtype), x) + gather(net.dec_pos.expand(x.shape[0], -1, -1))
        cond = torch.stack([z_id, visible["z_amb"], c], 1)                      # (N, 3, D)
        memory = torch.cat([net.cond_proj(cond) + net.cond_type, prev_mem[:, :3],
                            gather(prev_mem[:, 3:])], 1)                        # (N, 6+Lw, Dd)
        keys = valid[:, None, None, :]                                          # (N, 1, 1, Lw)
        for block in net.dec_blocks:
            x = block(x, memory=memory, mask=keys)
        h = net.dec_norm(x)
        if self.cfg.reuse_norm_head:
            mean, log_std = self.stat_head(h).unbind(-1)                        # (N, L) each
            pix = net.dec_pred(h) * log_std.exp()[..., None] + mean[..., None] + self.pix_head(h)
        else:
            pix = self.pix_head(h) * PIXEL_STD
        feat = self.feat_head(h)
        N, L = hidden.shape
        scatter = lambda t: t.new_zeros(N, L, t.shape[-1]).scatter(  # noqa: E731
            1, ids[..., None].expand(-1, -1, t.shape[-1]), t * valid[..., None])
        return scatter(pix), scatter(feat)

    @property
    def box_side(self) -> int:
        """Side in px of the pixel U-Net's box: cfg.box of the crop, a multiple of 4, at most the crop."""
        return min(self.img_size // 4 * 4, max(4, round(self.cfg.box * self.img_size / 4) * 4))

    def draw(self, inputs: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The pixel U-Net on the box around each mask. inputs float [N, H, W, C] (its input channels),
        mask bool [N, H, W], fill [N, H, W, 3], cond [N, 2D] -> [N, H, W, 3]: fill + the U-Net's
        residual inside the box, the fill elsewhere."""
        side = self.box_side
        idx = box_index(*mask_boxes(mask, side), side)
        res = self.mouth(inputs[idx].permute(0, 3, 1, 2), cond).permute(0, 2, 3, 1)   # (N, side, side, 3)
        return fill.index_put(idx, fill[idx] + res)

    def generate(self, frames: torch.Tensor, mask: torch.Tensor, c: torch.Tensor,
                 z_id: torch.Tensor | None = None, prev_mem: torch.Tensor | None = None,
                 segments: torch.Tensor | None = None, visible: dict | None = None,
                 reference: torch.Tensor | None = None) -> dict:
        """frames uint8/float [N, H, W, 3]; mask bool [N, H, W] (repaint region); c float [N, D].
        z_id float [N, D] or None: the mean of the mouth-hidden z_id over each segment (`segments`
        long [N]: segment index of each frame; None = all N frames are one segment).
        prev_mem [N, 3 + L, Dd] or None (the "none" tokens). visible: `encode_visible(frames, hidden)`
        when the caller has it already (fine-tuning caches it: the encoder is frozen).
        reference uint8/float [N, H, W, 3] or None: a frame of the same face (cfg.reference), the
        pixel U-Net's reference of how its skin, lips and teeth look (None: the fill).
        Returns {"image": [N, H, W, 3] in [0, 1] with the known pixels outside `mask` exactly,
        "coarse": [N, H, W, 3] (the decoder's patch prediction), "hidden": [N, L]}."""
        net = self.net
        unit = SyncLipMAE.to_unit(frames)
        hidden = self.masked_patches(mask)
        vis = visible if visible is not None else self.encode_visible(unit, hidden)
        if z_id is None:
            if segments is None:
                z_id = vis["z_id"].mean(0, keepdim=True).expand_as(vis["z_id"])
            else:
                n_seg = int(segments.max()) + 1
                sums = torch.zeros(n_seg, vis["z_id"].shape[1], dtype=vis["z_id"].dtype, device=unit.device)
                sums.index_add_(0, segments, vis["z_id"])
                counts = torch.bincount(segments, minlength=n_seg).clamp_min(1)[:, None]
                z_id = (sums / counts)[segments]
        if prev_mem is None:
            prev_mem = self.prev_memory(None, unit.shape[0])
        pix, feat = self.decode(vis, hidden, z_id, c, prev_mem)
        m = mask[..., None]
        fill = push_pull_fill(unit, ~mask)                                      # (N, H, W, 3)
        coarse = torch.where(m, fill + net.unpatchify(pix), unit)               # (N, H, W, 3)
        ref = fill if reference is None else SyncLipMAE.to_unit(reference)
        N, L, _ = feat.shape
        p = net.patch
        fmap = feat.reshape(N, net.grid, net.grid, p, p, -1).permute(0, 1, 3, 2, 4, 5)
        fmap = fmap.reshape(N, net.grid * p, net.grid * p, -1)                  # (N, H, W, F)
        inputs = torch.cat([fill * 2 - 1, m.to(fill.dtype), ref * 2 - 1, coarse * 2 - 1, fmap], -1)
        drawn = self.draw(inputs, mask, fill, torch.cat([c, vis["z_amb"]], -1))
        image = torch.where(m, drawn.clamp(0, 1), unit)
        return {"image": image, "coarse": coarse, "hidden": hidden}

    # ------------------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory: str | Path, meta: dict | None = None) -> Path:
        """Write config.json (format, SyncLipMAE config, DubConfig, meta) and model.safetensors."""
        config = {"format": FORMAT, "synclipmae": json.loads(config_json(self.net.cfg)),
                  "dub": dataclasses.asdict(self.cfg), "meta": meta or {}}
        return save_weights(directory, json.dumps(config, indent=2), self)

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> "Dubber":
        directory = Path(directory)
        if not is_dubber_checkpoint(directory):
            raise FileNotFoundError(f"{directory} is not a dubber checkpoint (config.json with format "
                                    f"'{FORMAT}' and model.safetensors)")
        config = json.loads((directory / "config.json").read_text())
        names = {f.name for f in dataclasses.fields(DubConfig)}
        unknown = sorted(set(config["dub"]) - names)
        if unknown:
            raise ValueError(f"{directory}/config.json: unknown dub settings {unknown} (a dubber from another "
                             f"synclipmae version: fine-tune it again with `synclipmae dub-train`)")
        dubber = cls(SyncLipMAE(config_from_dict(config["synclipmae"])), DubConfig(**config["dub"]))
        load_weights(dubber, directory, map_location, may_lack=tuple(f"net.{name}" for name in COUNT_BUFFERS))
        dubber.meta = config.get("meta", {})
        return dubber.eval()


def is_dubber_checkpoint(directory) -> bool:
    """True when `directory` holds a Dubber checkpoint (config.json of format 'synclipmae-dubber')."""
    p = Path(directory)
    if not (p / "config.json").is_file() or not (p / "model.safetensors").is_file():
        return False
    try:
        return json.loads((p / "config.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def load_dubber(directory, map_location: str | torch.device = "cpu") -> Dubber:
    """A Dubber checkpoint, or a plain SyncLipMAE checkpoint (or a training run's folder) wrapped
    untuned (it then draws with the pretrained decoder's cross-attention but untrained pixel heads)."""
    p = Path(directory)
    if is_dubber_checkpoint(p):
        return Dubber.from_pretrained(p, map_location)
    if not (p / "model.safetensors").is_file():
        p = latest_checkpoint(p) if p.is_dir() else None
        if p is None:
            raise FileNotFoundError(f"{directory}: not a dubber or synclipmae checkpoint")
    return Dubber.from_synclipmae(SyncLipMAE.from_pretrained(p, map_location))


__all__ = ["DubConfig", "Dubber", "dilate_masks", "is_dubber_checkpoint", "load_dubber", "encode_subset"]
