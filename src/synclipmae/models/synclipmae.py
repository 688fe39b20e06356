"""SyncLipMAE, read top to bottom like the method (DESIGN §2):

    patchify -> mask_views -> encode (prompt tokens z_id, z_voc, z_amb) -> encode_audio (a_t)
    -> decode(c = z_voc) / decode(c = a_t) -> losses (L_rec, L_con, L_dec)

Paper symbols and code names:
    z_id(t), z_voc(t), z_amb(t)  tokens["z_id"], tokens["z_voc"], tokens["z_amb"]   float [B, T, D]
    a_t                          tokens["a"]                                         float [B, T, D]
    view A / view B              `uniform_view` / `face_aware_view` in models/masking.py
    identity prompt shuffling    z_id(t') with t' != t drawn per frame (`_draws`)

Choices the paper does not make are config fields marked `# default` in config.py. The two
baselines of the demo are variants of this class: "syncnet-style" (one prompt token, no decoder,
contrastive only) and "mae-only" (no contrastive term).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synclipmae import dist
from synclipmae.config import Config, ConfigError, build_config, config_from_dict, config_json, did_you_mean
from synclipmae.losses import cross_cov_penalty, frame_contrast, info_nce, masked_mse
from synclipmae.models.audio import build_audio_encoder
from synclipmae.models.layers import Block, init_weights, sincos_pos_embed_2d
from synclipmae.models.masking import face_aware_view, patch_fraction, photometric_jitter, uniform_view
from synclipmae.timing import TIMING
from synclipmae.weights import load_weights, resolve_checkpoint, save_weights

PROMPTS = ("z_id", "z_voc", "z_amb")
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25  # default: fixed input normalisation of [0, 1] pixels
COUNT_BUFFERS = ("view_b_counts", "mouth_counts")  # training statistics behind the inference views; older checkpoints lack them
AUDIO_CHUNK = 750    # default: `audio_tokens` computes long audio in 30 s chunks ...
AUDIO_OVERLAP = 32   # ... each with 32 frames of context on both sides (more than the encoder sees)


@torch.no_grad()
def chunked_audio_tokens(encode_audio, audio: np.ndarray, device) -> torch.Tensor:
    """float32 [T * spf] at 16 kHz -> `encode_audio`'s tokens float [T, D], long audio in chunks of
    AUDIO_CHUNK frames with AUDIO_OVERLAP frames of context each side (bounded memory)."""
    spf = TIMING.samples_per_frame
    T = len(audio) // spf
    x = torch.from_numpy(np.ascontiguousarray(audio[:T * spf], np.float32)).to(device)
    parts = []
    for c0 in range(0, T, AUDIO_CHUNK):
        lo, hi = max(0, c0 - AUDIO_OVERLAP), min(T, c0 + AUDIO_CHUNK + AUDIO_OVERLAP)
        a = encode_audio(x[None, lo * spf:hi * spf])[0]                          # (hi - lo, D)
        parts.append(a[c0 - lo:c0 - lo + min(AUDIO_CHUNK, T - c0)])
    return torch.cat(parts)                                                     # (T, D)


def take_frames(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B, T, ...], idx long [B, R] -> x[b, idx[b]] as [B, R, ...]."""
    return torch.gather(x, 1, idx.view(*idx.shape, *[1] * (x.dim() - 2)).expand(-1, -1, *x.shape[2:]))


def centred_unit(x: torch.Tensor) -> torch.Tensor:
    """x float [..., T, E] -> each row minus the sequence's mean over T, L2-normalised."""
    return F.normalize(x - x.mean(-2, keepdim=True), dim=-1)


class SyncLipMAE(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        self.patch = m.patch_size
        self.grid = m.img_size // m.patch_size
        self.num_patches = self.grid**2
        self.prompt_names = ("z_voc",) if m.variant == "syncnet-style" else PROMPTS
        self.has_decoder = m.variant != "syncnet-style"
        self.has_contrastive = m.variant != "mae-only"
        self.has_amb = self.has_decoder and self.has_contrastive and cfg.loss.w_amb > 0  # L_amb: mae-only has no contrast
        patch_dim = self.patch * self.patch * 3

        # per-frame ViT encoder with K prompt tokens
        self.patch_embed = nn.Linear(patch_dim, m.width)  # reshape + linear: 4.6x faster than Conv2d on CPU
        self.register_buffer("pos_embed", sincos_pos_embed_2d(m.width, self.grid)[None], persistent=False)
        self.prompts = nn.Parameter(torch.randn(len(self.prompt_names), m.width) * 0.02)
        # how often view B kept each patch in training: the inference view of z_voc and z_amb (motion_patches);
        # how often each patch lay in the lower face in training: the inference view of z_id (identity_patches)
        self.register_buffer("view_b_counts", torch.zeros(self.num_patches))
        self.register_buffer("mouth_counts", torch.zeros(self.num_patches))
        self.blocks = nn.ModuleList([Block(m.width, m.heads, m.mlp_ratio) for _ in range(m.depth)])
        self.norm = nn.LayerNorm(m.width)

        # audio tokens a_t, and the normalised projection heads of L_con and sync scoring
        self.audio = build_audio_encoder(m.audio, m.width)
        self.proj_v = nn.Linear(m.width, m.proj_dim)
        self.proj_a = nn.Linear(m.width, m.proj_dim)
        if self.has_amb:  # L_amb's head (docs/benchmarks.md, off by default)
            self.proj_amb = nn.Linear(m.width, m.proj_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.loss.temperature)))

        # shared decoder: self-attention over patches, cross-attention to {z_id(t'), z_amb(t), c}
        if self.has_decoder:
            self.dec_embed = nn.Linear(m.width, m.dec_width)
            self.mask_token = nn.Parameter(torch.randn(1, 1, m.dec_width) * 0.02)
            self.register_buffer("dec_pos", sincos_pos_embed_2d(m.dec_width, self.grid)[None], persistent=False)
            self.cond_proj = nn.Linear(m.width, m.dec_width)
            self.cond_type = nn.Parameter(torch.randn(3, m.dec_width) * 0.02)  # slots: identity, ambient, c
            self.dec_blocks = nn.ModuleList([Block(m.dec_width, m.dec_heads, m.mlp_ratio, cross=True)
                                             for _ in range(m.dec_depth)])
            self.dec_norm = nn.LayerNorm(m.dec_width)
            self.dec_pred = nn.Linear(m.dec_width, patch_dim)
        init_weights(self)
        if m.audio.encoder == "wav2vec2":  # keep the pretrained backbone's own initialisation
            self.audio = build_audio_encoder(m.audio, m.width)

    # ------------------------------------------------------------------------------ patchify
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs float [N, H, W, 3] -> patches [N, L, P*P*3] (row-major patches, channels last)."""
        N, H, W, C = imgs.shape
        p, h, w = self.patch, H // self.patch, W // self.patch
        x = imgs.reshape(N, h, p, w, p, C).permute(0, 1, 3, 2, 4, 5)  # (N, h, w, p, p, 3)
        return x.reshape(N, h * w, p * p * C)

    def input_patches(self, unit: torch.Tensor) -> torch.Tensor:
        """Frames in [0, 1] [N, H, W, 3] -> the encoder's input: normalised (PIXEL_MEAN, PIXEL_STD) and
        patchified [N, L, P*P*3]."""
        return self.patchify((unit - PIXEL_MEAN) / PIXEL_STD)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """patches [N, L, P*P*3] -> imgs [N, H, W, 3]."""
        N, L, _ = x.shape
        p, h = self.patch, self.grid
        x = x.reshape(N, h, h, p, p, 3).permute(0, 1, 3, 2, 4, 5)  # (N, h, p, w, p, 3)
        return x.reshape(N, h * p, h * p, 3)

    @staticmethod
    def to_unit(frames: torch.Tensor) -> torch.Tensor:
        """uint8 or float frames -> float in [0, 1]."""
        return frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()

    # ------------------------------------------------------------------------------ mask_views
    def _draws(self, seeds: torch.Tensor, T: int) -> dict:
        """All randomness of one step, drawn per clip from its own seed, so one process and many
        ranks (and a resumed run) make identical draws. seeds long [B] -> tensors [B, ...]:
        noise_a, noise_b [B, T, L]; mouth [B, T]; jitter [B, T, 7]; rec [B, R] (the frames view A
        reconstructs); id_src [B, R] (for each of them, the position in `rec` of the frame t' != t
        whose z_id it is given)."""
        out = {k: [] for k in ("noise_a", "noise_b", "mouth", "jitter", "rec", "id_src")}
        L, R = self.num_patches, self.rec_frames(T)
        for seed in seeds.tolist():
            g = torch.Generator().manual_seed(int(seed))
            out["noise_a"].append(torch.rand(T, L, generator=g))
            out["noise_b"].append(torch.rand(T, L, generator=g))
            out["mouth"].append(torch.rand(T, generator=g) < self.cfg.mask.mouth_prob)
            out["jitter"].append((torch.rand(T, 7, generator=g) * 2 - 1) * self.cfg.mask.jitter)
            out["rec"].append(torch.randperm(T, generator=g)[:R].sort().values)
            shift = torch.randint(1, max(R, 2), (R,), generator=g)  # t' = rec[(i + shift) mod R], never t
            out["id_src"].append((torch.arange(R) + shift) % R)
        return {k: torch.stack(v) for k, v in out.items()}

    def rec_frames(self, T: int) -> int:
        """R, frames per clip that view A reconstructs (loss.rec_frames; 0 = all T)."""
        R = self.cfg.loss.rec_frames
        return T if R <= 0 else min(R, T)

    def mask_views(self, frames, face, mouth, draws, rec):
        """frames float [B, T, H, W, 3] in [0, 1]; face, mouth float [B*T, L] (the fraction of each
        patch inside the face / the lower face); rec long [B, R]. Returns view A of the R
        reconstructed frames, (ids_keep_a, mask_a, ids_restore_a) over [B*R, L], and view B of all
        frames, (patches_b [B*T, L, P*P*3], ids_keep_b [B*T, Lk])."""
        mc = self.cfg.mask
        pick = lambda x: take_frames(x, rec)  # noqa: E731
        B, T = frames.shape[:2]
        mouth_rec = pick(mouth.view(B, T, -1)).flatten(0, 1)         # (B*R, L)
        view_a = uniform_view(pick(draws["noise_a"]).flatten(0, 1), mc.ratio_a, mouth_rec, pick(draws["mouth"]).flatten())
        flat = frames.flatten(0, 1)
        jittered = photometric_jitter(flat, draws["jitter"].flatten(0, 1)) if mc.jitter > 0 else flat
        ids_keep_b, _, _ = face_aware_view(draws["noise_b"].flatten(0, 1), mc.ratio_b, face, mc.face_bias,
                                           mouth, mc.mouth_bias)
        return view_a, (self.input_patches(jittered), ids_keep_b)

    # ------------------------------------------------------------------------------ encode
    def encode_patches(self, patches: torch.Tensor, ids_keep: torch.Tensor | None = None) -> dict:
        """patches float [N, L, P*P*3] (normalised); ids_keep long [N, Lk] or None (all patches).
        Returns {prompt name: [N, D], "patches": [N, Lk, D]}."""
        x = self.patch_embed(patches) + self.pos_embed                          # (N, L, D)
        if ids_keep is not None:
            x = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, x.shape[-1]))  # (N, Lk, D)
        K = len(self.prompt_names)
        x = torch.cat([self.prompts[None].expand(x.shape[0], -1, -1), x], dim=1)  # (N, K+Lk, D)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        tokens = {name: x[:, i] for i, name in enumerate(self.prompt_names)}
        tokens["patches"] = x[:, K:]
        return tokens

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """audio float [B, S], S = T * samples_per_frame -> a_t float [B, T, D]."""
        return self.audio(audio)

    def audio_tokens(self, audio: np.ndarray) -> torch.Tensor:
        """One soundtrack of any length: float32 [T * spf] at 16 kHz -> a_t float [T, D]
        (`encode_audio` in bounded memory, `chunked_audio_tokens`)."""
        return chunked_audio_tokens(self.encode_audio, audio, next(self.parameters()).device)

    def motion_patches(self) -> torch.Tensor | None:
        """ids long [Lk] of the patches z_voc and z_amb are read from at inference, or None for all.

        Those tokens are trained on view B, which keeps Lk = (1 - ratio_b) L patches, face and lower
        face first. Reading them at inference from the Lk patches view B kept most often in training
        (mask.motion_view = "frequent", default) matches what they were trained on; the crops of
        SynthTalk and of the real-video path are framed alike. None (every patch) with
        mask.motion_view = "all" or for a model that was never trained (no counts)."""
        if self.cfg.mask.motion_view == "all" or not bool(self.view_b_counts.any()):
            return None
        keep = max(1, int(round(self.num_patches * (1 - self.cfg.mask.ratio_b))))
        return torch.argsort(self.view_b_counts, descending=True, stable=True)[:keep].sort().values

    def identity_patches(self) -> torch.Tensor | None:
        """ids long [Li] of the patches z_id is read from at inference, or None for all.

        z_id has to carry what is constant over a clip; read from every patch it also follows the
        mouth (mask.identity_view = "all"). The default, "outside-mouth", reads the patches that lay in
        the lower-face region in fewer than half as many training frames as the patch most often there
        (the `mouth_counts` buffer; the crops of SynthTalk and of the real-video path are framed
        alike, so that patch is in the lower face of nearly every frame). None for "all", for a model
        that was never trained, or for a checkpoint written before the counts existed."""
        if self.cfg.mask.identity_view == "all" or not bool(self.mouth_counts.any()):
            return None
        ids = torch.nonzero(self.mouth_counts < 0.5 * self.mouth_counts.max()).flatten()
        return ids if ids.numel() else None

    def mouth_patches(self) -> torch.Tensor | None:
        """ids long [Lm] of the mouth region: the patches that lay in the lower-face region in at least
        half as many training frames as the patch most often there (`mouth_counts`, the complement of
        `identity_patches`). None for a model that was never trained."""
        if not bool(self.mouth_counts.any()):
            return None
        return torch.nonzero(self.mouth_counts >= 0.5 * self.mouth_counts.max()).flatten()

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, audio: torch.Tensor | None = None, chunk: int = 256,
               names: tuple[str, ...] | None = None) -> dict:
        """The downstream interface. frames uint8/float [B, T, H, W, 3] (or [T, H, W, 3]); audio
        float [B, S] (or [S]) or None. Returns named per-frame tokens float [B, T, D]: z_id, z_voc,
        z_amb (those the variant has, or those in `names`) and, with audio, a. No masking, no jitter:
        z_id reads the `identity_patches` view, z_voc and z_amb the `motion_patches` view."""
        squeeze = frames.dim() == 4
        if squeeze:
            frames = frames[None]
            audio = audio[None] if audio is not None else None
        B, T = frames.shape[:2]
        names = [n for n in self.prompt_names if names is None or n in names]
        identity, motion = self.identity_patches(), self.motion_patches()
        passes = [(identity, [n for n in names if n == "z_id"]), (motion, [n for n in names if n != "z_id"])]
        if identity is None and motion is None:
            passes = [(None, names)]  # one pass over every patch serves all tokens
        flat = frames.flatten(0, 1)
        tokens = {n: [] for n in names}
        for i in range(0, flat.shape[0], chunk):  # bounded memory for long videos
            x = self.input_patches(self.to_unit(flat[i:i + chunk]))
            for ids, wanted in passes:
                if wanted:
                    out = self.encode_patches(x, None if ids is None else ids.to(x.device)[None].expand(x.shape[0], -1))
                    for n in wanted:
                        tokens[n].append(out[n])
        tokens = {n: torch.cat(v).view(B, T, -1) for n, v in tokens.items()}
        if audio is not None:
            tokens["a"] = self.encode_audio(audio.float())
        return {k: v[0] for k, v in tokens.items()} if squeeze else tokens

    def sync_embeddings(self, z_voc: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The space where L_con aligns them and sync distances are measured: projected, centred
        over time (loss.center, default: the static part of a sequence, identity and voice, is
        removed, so only its dynamics are compared) and L2-normalised.
        z_voc [..., T, D], a [..., T', D] (sequences) -> v [..., T, E], a [..., T', E]."""
        v, a = self.proj_v(z_voc), self.proj_a(a)
        if self.cfg.loss.center:
            return centred_unit(v), centred_unit(a)
        return F.normalize(v, dim=-1), F.normalize(a, dim=-1)

    def ambient_embeddings(self, z_amb: torch.Tensor) -> torch.Tensor:
        """L_amb's space: z_amb [B, n, D] projected, centred over each clip's frames and L2-normalised
        -> [B, n, E]. Only when the model has L_amb (has_amb)."""
        return centred_unit(self.proj_amb(z_amb))

    # ------------------------------------------------------------------------------ decode
    def decode(self, visible: torch.Tensor, ids_restore: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """visible float [N, Lk, D] (view A's encoded patches); ids_restore long [N, L];
        cond float [N, 3, D] = (z_id(t'), z_amb(t), c). Returns predicted patches [N, L, P*P*3]."""
        x = self.dec_embed(visible)                                             # (N, Lk, Dd)
        N, Lk, Dd = x.shape
        x = torch.cat([x, self.mask_token.expand(N, self.num_patches - Lk, Dd)], dim=1)  # (N, L, Dd)
        x = torch.gather(x, 1, ids_restore[..., None].expand(-1, -1, Dd)) + self.dec_pos  # patch order
        memory = self.cond_proj(cond) + self.cond_type                          # (N, 3, Dd)
        for block in self.dec_blocks:
            x = block(x, memory=memory)
        return self.dec_pred(self.dec_norm(x))                                  # (N, L, P*P*3)

    # ------------------------------------------------------------------------------ losses
    def forward(self, batch: dict, return_outputs: bool = False) -> dict:
        """batch: frames uint8 [B, T, H, W, 3], audio float [B, S], face_mask and mouth_mask bool
        [B, T, H, W], seed long [B]. Returns {"loss", rec_video, rec_audio, con, dec, top1, ...}."""
        cfg = self.cfg
        B, T = batch["frames"].shape[:2]
        draws = {k: v.to(batch["frames"].device) for k, v in self._draws(batch["seed"], T).items()}
        frames = self.to_unit(batch["frames"])                                  # (B, T, H, W, 3)
        face = patch_fraction(batch["face_mask"].flatten(0, 1), self.patch)     # (B*T, L)
        mouth = patch_fraction(batch["mouth_mask"].flatten(0, 1), self.patch)   # (B*T, L)
        view_a, (patches_b, ids_keep_b) = self.mask_views(frames, face, mouth, draws, draws["rec"])
        tok_b = self.encode_patches(patches_b, ids_keep_b)                      # (B*T, ...)
        if self.training:
            self.view_b_counts.index_add_(0, ids_keep_b.flatten(), torch.ones(ids_keep_b.numel(), device=ids_keep_b.device))
            self.mouth_counts += (mouth > 0).sum(0)
        a = self.encode_audio(batch["audio"]).flatten(0, 1)                     # (B*T, D)
        out: dict = {}
        loss = frames.new_zeros(())

        if self.has_contrastive and cfg.loss.w_con > 0:
            v, aa = self.sync_embeddings(tok_b["z_voc"].view(B, T, -1), a.view(B, T, -1))
            v, aa = v.flatten(0, 1), aa.flatten(0, 1)                             # (N, E) each, N = B*T
            r, n = dist.rank(), v.shape[0]
            clip = torch.arange(B, device=v.device).repeat_interleave(T) + r * B
            ids = torch.stack([clip, torch.arange(T, device=v.device).repeat(B)], 1)  # (N, 2)
            con, top1 = info_nce(v, aa, dist.gather_with_grad(v), dist.gather_with_grad(aa), ids,
                                 dist.gather_with_grad(ids), r * n, self.logit_scale, cfg.loss.exclude_radius,
                                 cfg.loss.negatives == "clip")
            loss = loss + cfg.loss.w_con * con
            n_cols = T - 2 * cfg.loss.exclude_radius if cfg.loss.negatives == "clip" else n * dist.world_size()
            out.update(con=con.detach(), top1=top1, ln_n=torch.tensor(math.log(max(n_cols, 1))),
                       temperature=(1 / self.logit_scale.exp()).detach())

        if self.has_decoder:
            ids_keep_a, mask_a, ids_restore_a = view_a
            rec = draws["rec"]                                                    # (B, R)
            R = rec.shape[1]
            at_rec = lambda x: take_frames(x.view(B, T, -1), rec).flatten(0, 1)  # noqa: E731
            frames_rec = take_frames(frames, rec).flatten(0, 1)                  # (B*R, H, W, 3)
            patches = self.patchify(frames_rec)                                   # (B*R, L, P*P*3) targets
            tok_a = self.encode_patches(self.input_patches(frames_rec), ids_keep_a)
            z_id = tok_a["z_id"].view(B, R, -1)
            z_id_shuffled = torch.gather(z_id, 1, draws["id_src"][..., None].expand(-1, -1, z_id.shape[-1]))
            z_voc, z_amb, a_rec = at_rec(tok_b["z_voc"]), at_rec(tok_b["z_amb"]), at_rec(a)  # (B*R, D) each
            fixed = [z_id_shuffled.flatten(0, 1), z_amb]
            cond = torch.cat([torch.stack(fixed + [z_voc], 1),                    # pass 1: c = z_voc(t)
                              torch.stack(fixed + [a_rec], 1)])                   # pass 2: c = a_t
            pred = self.decode(tok_a["patches"].repeat(2, 1, 1), ids_restore_a.repeat(2, 1), cond)
            pred_v, pred_a = pred.chunk(2)                                        # (B*R, L, P*P*3) each
            rec_v = masked_mse(pred_v, patches, mask_a, cfg.loss.norm_pix)
            rec_a = masked_mse(pred_a, patches, mask_a, cfg.loss.norm_pix)
            dec = cross_cov_penalty([dist.gather_with_grad(t) for t in (tok_a["z_id"], z_voc, z_amb)])
            loss = loss + cfg.loss.w_rec * (rec_v + rec_a) + cfg.loss.w_dec * dec
            if self.has_amb:  # L_amb: view A's z_amb(t) finds frame t among view B's z_amb of the clip
                amb = frame_contrast(self.ambient_embeddings(tok_a["z_amb"].view(B, R, -1)),
                                     self.ambient_embeddings(tok_b["z_amb"].view(B, T, -1)), rec, cfg.loss.exclude_radius,
                                     cfg.loss.amb_temperature)
                loss = loss + cfg.loss.w_amb * amb
                out["amb"] = amb.detach()
            out.update(rec_video=rec_v.detach(), rec_audio=rec_a.detach(), dec=dec.detach())
            if return_outputs:
                out["outputs"] = {"mask_a": mask_a, "pred_video": pred_v.detach(), "pred_audio": pred_a.detach(),
                                  "target": patches}
        out["loss"] = loss
        return out

    def reconstruction_images(self, outputs: dict) -> dict:
        """Turn forward(..., return_outputs=True)["outputs"] into images float [N, H, W, 3] in [0, 1]:
        input, masked input, video-driven and audio-driven reconstructions (visible patches pasted)."""
        target, mask = outputs["target"], outputs["mask_a"][..., None]
        images = {"input": target, "masked": target * (1 - mask) + 0.5 * mask}
        for key in ("pred_video", "pred_audio"):
            pred = outputs[key]
            if self.cfg.loss.norm_pix:  # undo the per-patch normalisation with the target's statistics
                mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
                pred = pred * (var + 1e-6) ** 0.5 + mean
            images[key] = target * (1 - mask) + pred.clamp(0, 1) * mask
        return {k: self.unpatchify(v) for k, v in images.items()}

    # ------------------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json and model.safetensors (no pickle) into `directory`."""
        return save_weights(directory, config_json(self.cfg), self)

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> "SyncLipMAE":
        directory = Path(directory)
        if not (directory / "config.json").is_file() or not (directory / "model.safetensors").is_file():
            raise FileNotFoundError(f"{directory} is not a synclipmae checkpoint (needs config.json and model.safetensors)")
        cfg = config_from_dict(json.loads((directory / "config.json").read_text()))
        return load_weights(cls(cfg), directory, map_location, may_lack=COUNT_BUFFERS).eval()


# ---------------------------------------------------------------------------------- presets
PRESETS: dict = {}


def register(fn):
    """Register a preset: a function returning the model-group overrides of the defaults."""
    PRESETS[fn.__name__.removeprefix("synclipmae_")] = fn
    return fn


@register
def synclipmae_tiny():  # laptop CPU
    return dict(img_size=96, patch_size=8, width=192, depth=6, heads=3, dec_width=128, dec_depth=2)


@register
def synclipmae_small():
    return dict(img_size=128, patch_size=8, width=384, depth=8, heads=6, dec_width=256, dec_depth=4)


@register
def synclipmae_base():  # MAE ViT-B geometry
    return dict(img_size=224, patch_size=16, width=768, depth=12, heads=12, dec_width=512, dec_depth=8, dec_heads=16)


@register
def synclipmae_large():  # ViT-L
    return dict(img_size=224, patch_size=16, width=1024, depth=24, heads=16, dec_width=512, dec_depth=8, dec_heads=16)


def preset_model(name: str) -> dict:
    """The model-group overrides of a registered preset ("tiny", "small", "base", "large")."""
    name = name.removeprefix("synclipmae_")
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'{did_you_mean(name, PRESETS)}")
    return PRESETS[name]()


def create_model(name: str = "tiny", overrides: list[str] | dict | None = None) -> SyncLipMAE:
    """`create_model("tiny")` or `create_model("synclipmae_tiny", ["model.depth=4"])`."""
    return SyncLipMAE(build_config(overrides=overrides, base={"model": preset_model(name)}))


def load_model(path: str | Path | None = None, map_location="cpu") -> SyncLipMAE:
    """Load a checkpoint folder (config.json + model.safetensors), a training run's latest checkpoint,
    or shipped weights by name: `load_model()` and `load_model("real-tiny")` give the weights inside
    the package (docs/model-card.md)."""
    return SyncLipMAE.from_pretrained(resolve_checkpoint(path), map_location)
