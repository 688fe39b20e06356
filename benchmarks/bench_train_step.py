"""Train-step time and peak memory of the `tiny` and `small` presets (B=8 clips x T=16 frames) on this
machine, and the per-frame encoder's forward+backward time beside a plain reference ViT of the same size
built from torch.nn.TransformerEncoderLayer, measured in the same run.

    python benchmarks/bench_train_step.py [--presets tiny small] [--steps 3]

Peak memory is the process's peak resident set size (ru_maxrss) after each preset, so it includes
the Python and torch baseline (printed first).
"""
from __future__ import annotations

import argparse
import resource
import time

import torch
from torch import nn

from synclipmae import create_model


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def batch_for(size: int, B: int, T: int) -> dict:
    g = torch.Generator().manual_seed(0)
    face = torch.zeros(B, T, size, size, dtype=torch.bool)
    face[:, :, size // 8: -size // 8, size // 6: -size // 6] = True
    mouth = torch.zeros_like(face)
    mouth[:, :, int(size * 0.62): int(size * 0.85), size // 3: -size // 3] = True
    return {"frames": torch.randint(0, 256, (B, T, size, size, 3), dtype=torch.uint8, generator=g),
            "audio": torch.randn(B, T * 640, generator=g) * 0.1, "face_mask": face, "mouth_mask": mouth,
            "seed": torch.arange(B)}


def timed(fn, steps: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


class ReferenceViT(nn.Module):
    """The same encoder geometry from torch.nn.TransformerEncoderLayer (pre-norm, GELU)."""

    def __init__(self, patch_dim: int, width: int, depth: int, heads: int, tokens: int):
        super().__init__()
        self.embed = nn.Linear(patch_dim, width)
        self.pos = nn.Parameter(torch.zeros(1, tokens, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, x):
        return self.norm(self.blocks(self.embed(x) + self.pos))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; baseline peak RSS {peak_mib():.0f} MiB")
    print(f"B={args.batch} clips x T={args.frames} frames, mean of {args.steps} steps after one warm-up step")
    for name in args.presets:
        torch.manual_seed(0)
        model = create_model(name)
        m = model.cfg.model
        batch = batch_for(m.img_size, args.batch, args.frames)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            optimizer.zero_grad(set_to_none=True)
            model(batch)["loss"].backward()
            optimizer.step()

        step_s = timed(step, args.steps)
        # encoder alone, full frames (no masking): ours vs the reference, same input and geometry
        N = args.batch * args.frames
        patches = model.patchify(torch.rand(N, m.img_size, m.img_size, 3))
        ref = ReferenceViT(patches.shape[-1], m.width, m.depth, m.heads, patches.shape[1] + 3)
        ref_in = torch.cat([torch.zeros(N, 3, patches.shape[-1]), patches], 1)
        ours_s = timed(lambda: model.encode_patches(patches)["z_voc"].sum().backward(), args.steps)
        ref_s = timed(lambda: ref(ref_in)[:, 1].sum().backward(), args.steps)
        print(f"{name:6s} train step {step_s:6.2f} s ({N / step_s:6.1f} frames/s)  peak RSS {peak_mib():6.0f} MiB  "
              f"| encoder fwd+bwd on {N} full frames: ours {ours_s:5.2f} s, nn.TransformerEncoderLayer {ref_s:5.2f} s")


if __name__ == "__main__":
    main()
