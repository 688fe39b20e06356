"""A hand-made, training-free sync scorer with the interface `sync_file` uses (cfg.model.img_size,
encode, encode_audio, audio_tokens, sync_embeddings): a reference that checks the file path's timing and signs
without any checkpoint (tests, benchmarks/bench_sync_files.py).

    video token z_voc(t): pixel spread of the lower-middle of the crop (teeth and mouth interior
                          show when the mouth opens), standardised over the call
    audio token a_t:      RMS of the frame's audio, standardised over the call

On SynthTalk it finds planted offsets; on real faces it is weak (no learning).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from synclipmae.config import IMG_SIZE
from synclipmae.models.synclipmae import chunked_audio_tokens
from synclipmae.timing import TIMING


class MouthEnergyModel(torch.nn.Module):
    def __init__(self, size: int = IMG_SIZE):
        super().__init__()
        self.cfg = SimpleNamespace(model=SimpleNamespace(img_size=size))
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the model a device

    @staticmethod
    def _z(x: torch.Tensor) -> torch.Tensor:
        return (x - x.mean()) / (x.std() + 1e-6)

    def encode(self, frames: torch.Tensor, audio: torch.Tensor | None = None, chunk: int = 256, names=None) -> dict:
        """frames [..., S, S, 3] -> {"z_voc": [..., 1]} (and "a" with audio, like SyncLipMAE.encode)."""
        S = frames.shape[-2]
        mouth = frames.float()[..., int(0.62 * S):int(0.86 * S), int(0.3 * S):int(0.7 * S), :]
        out = {"z_voc": self._z(mouth.std(dim=(-1, -2, -3)))[..., None]}
        if audio is not None:
            out["a"] = self.encode_audio(audio)
        return out

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """audio [..., T * spf] -> a [..., T, 1]."""
        spf = TIMING.samples_per_frame
        T = audio.shape[-1] // spf
        rms = audio[..., :T * spf].reshape(*audio.shape[:-1], T, spf).pow(2).mean(-1).sqrt()
        return self._z(rms)[..., None]

    def audio_tokens(self, audio: np.ndarray) -> torch.Tensor:
        """float32 [T * spf] -> a [T, 1], in the chunks `SyncLipMAE.audio_tokens` uses."""
        return chunked_audio_tokens(self.encode_audio, audio, self.anchor.device)

    def sync_embeddings(self, z: torch.Tensor, a: torch.Tensor):
        norm = lambda x: torch.nn.functional.normalize(torch.cat([x, torch.ones_like(x)], -1), dim=-1)  # noqa: E731
        return norm(z), norm(a)
