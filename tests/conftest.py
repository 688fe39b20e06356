from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def real_dir() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real clips not found at {REAL} (they live beside the repository, in ../shared)")
    return REAL


def tiny_overrides(**extra) -> dict:
    """A very small model for fast CPU tests: 32x32 frames, 16 patches, 2 layers."""
    model = dict(img_size=32, patch_size=8, width=32, depth=2, heads=2, dec_width=32, dec_depth=1, dec_heads=2,
                 proj_dim=16, audio=dict(width=32, depth=1, heads=2))
    model.update(extra.pop("model", {}))
    return {"model": model, **extra}


def random_batch(B: int = 2, T: int = 4, size: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    face = torch.zeros(B, T, size, size, dtype=torch.bool)
    face[:, :, size // 8: -size // 8, size // 8: -size // 8] = True
    mouth = torch.zeros_like(face)
    mouth[:, :, size // 2 + size // 8: -size // 8, size // 4: -size // 4] = True
    return {"frames": torch.randint(0, 256, (B, T, size, size, 3), dtype=torch.uint8, generator=g),
            "audio": torch.randn(B, T * 640, generator=g) * 0.1, "face_mask": face, "mouth_mask": mouth,
            "seed": torch.arange(B) + seed * 100, "source": [f"random/{i}" for i in range(B)]}
