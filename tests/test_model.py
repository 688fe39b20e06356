import math

import pytest
import torch
import torch.nn.functional as F

from conftest import random_batch, tiny_overrides
from synclipmae import SyncLipMAE, create_model, load_model
from synclipmae.config import build_config
from synclipmae.losses import cross_cov_penalty, frame_contrast, info_nce, masked_mse
from synclipmae.models.audio import log_mel
from synclipmae.models.masking import face_aware_view, keep_lowest, patch_fraction, photometric_jitter, uniform_view
from synclipmae.models.synclipmae import PRESETS


def tiny(variant="synclipmae", **extra):
    return SyncLipMAE(build_config(overrides=tiny_overrides(model={"variant": variant}, **extra)))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_trains_one_step(name):
    torch.manual_seed(0)
    # base and large keep their geometry (image, patch, widths, heads) but one block each, for CPU time
    model = create_model(name, {"model": {"depth": 1, "dec_depth": 1}} if name in ("base", "large") else None)
    size = model.cfg.model.img_size
    out = model(random_batch(B=1, T=4, size=size))  # T > 3: negatives outside the excluded radius
    out["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("variant", ["synclipmae", "syncnet-style", "mae-only"])
def test_variants_losses_and_gradients(variant):
    torch.manual_seed(0)
    model = tiny(variant)
    out = model(random_batch())
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert ("con" in out) == (variant != "mae-only")
    assert ("rec_video" in out) == (variant != "syncnet-style")
    trained = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    if variant == "synclipmae":
        assert len(trained) == len(list(model.parameters()))
    if variant == "mae-only":  # no contrastive term: the projection heads stay untouched
        assert not any(n.startswith(("proj_", "logit_scale")) for n in trained)


def test_encode_returns_named_tokens_and_roundtrips(tmp_path):
    torch.manual_seed(0)
    model = tiny().eval()
    batch = random_batch(B=2, T=5)
    tokens = model.encode(batch["frames"], batch["audio"])
    assert set(tokens) == {"z_id", "z_voc", "z_amb", "a"}
    assert all(t.shape == (2, 5, 32) for t in tokens.values())
    single = model.encode(batch["frames"][0], batch["audio"][0])
    assert torch.allclose(single["z_voc"], tokens["z_voc"][0], atol=1e-5)
    v, a = model.sync_embeddings(tokens["z_voc"], tokens["a"])
    assert torch.allclose(v.norm(dim=-1), torch.ones(2, 5), atol=1e-5)
    model.save_pretrained(tmp_path / "ckpt")
    assert not list((tmp_path / "ckpt").glob("*.pt")), "weights must be safetensors, not pickle"
    again = load_model(tmp_path / "ckpt").encode(batch["frames"], batch["audio"])
    for k in tokens:
        assert torch.equal(again[k], tokens[k])


def test_motion_tokens_read_the_patches_view_b_keeps_most(tmp_path):
    torch.manual_seed(0)
    model = tiny()
    assert model.motion_patches() is None  # never trained: every patch
    model(random_batch(B=2, T=4))          # one training forward counts view B's kept patches
    ids = model.motion_patches()
    L = model.num_patches
    assert ids.numel() == round(L * (1 - model.cfg.mask.ratio_b))
    counts = model.view_b_counts
    assert counts.sum() == 2 * 4 * ids.numel()
    assert counts[ids].min() >= counts[~torch.isin(torch.arange(L), ids)].max()
    mouth = patch_fraction(random_batch(B=1, T=1)["mouth_mask"][0], model.patch)[0] > 0
    assert torch.isin(torch.nonzero(mouth).flatten(), ids).all()  # lower-face patches are kept first
    model.eval()
    batch = random_batch(B=1, T=3, seed=1)
    tokens = model.encode(batch["frames"])
    only_voc = model.encode(batch["frames"], names=("z_voc",))
    assert set(only_voc) == {"z_voc"} and torch.allclose(only_voc["z_voc"], tokens["z_voc"], atol=1e-6)
    x = model.patchify((batch["frames"][0].float() / 255 - 0.5) / 0.25)
    by_hand = model.encode_patches(x, ids[None].expand(3, -1))
    assert torch.allclose(tokens["z_amb"][0], by_hand["z_amb"], atol=1e-5)       # motion view
    model.save_pretrained(tmp_path / "ckpt")
    assert torch.equal(load_model(tmp_path / "ckpt").motion_patches(), ids)
    # a checkpoint written before the counts existed loads and reads every patch; other gaps still fail
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "ckpt" / "model.safetensors"
    state = load_file(str(weights))
    save_file({k: v for k, v in state.items() if k not in ("view_b_counts", "mouth_counts")}, str(weights))
    old = load_model(tmp_path / "ckpt")
    assert old.motion_patches() is None and old.identity_patches() is None
    save_file({k: v for k, v in state.items() if k != "prompts"}, str(weights))
    with pytest.raises(RuntimeError, match="prompts"):
        load_model(tmp_path / "ckpt")
    everything = SyncLipMAE(build_config(overrides=tiny_overrides(mask={"motion_view": "all"})))
    everything.load_state_dict(model.state_dict())
    assert everything.motion_patches() is None


def test_identity_token_reads_the_patches_outside_the_lower_face():
    torch.manual_seed(0)
    model = tiny()
    assert model.identity_patches() is None  # never trained: every patch
    batch = random_batch(B=2, T=4)
    model(batch)                             # one training forward counts the lower-face patches
    mouth = patch_fraction(batch["mouth_mask"][0], model.patch)[0] > 0          # the same in every frame
    ids = model.identity_patches()
    assert torch.equal(ids, torch.nonzero(~mouth).flatten())
    model.eval()
    frames = random_batch(B=1, T=3, seed=1)["frames"]
    x = model.patchify((frames[0].float() / 255 - 0.5) / 0.25)
    by_hand = model.encode_patches(x, ids[None].expand(3, -1))["z_id"]
    assert torch.allclose(model.encode(frames)["z_id"][0], by_hand, atol=1e-5)
    changed = frames.clone()
    changed[0, :, mouth.view(4, 4).repeat_interleave(8, 0).repeat_interleave(8, 1)] = 0  # repaint the lower face
    assert torch.allclose(model.encode(changed)["z_id"], model.encode(frames)["z_id"], atol=1e-5)
    assert not torch.allclose(model.encode(changed)["z_voc"], model.encode(frames)["z_voc"], atol=1e-3)
    everything = SyncLipMAE(build_config(overrides=tiny_overrides(mask={"identity_view": "all"})))
    everything.load_state_dict(model.state_dict())
    assert everything.identity_patches() is None


def test_forward_is_deterministic_in_the_batch_seeds():
    torch.manual_seed(0)
    model = tiny()
    a, b = model(random_batch(seed=1)), model(random_batch(seed=1))
    assert torch.equal(a["loss"], b["loss"])
    other = random_batch(seed=1)
    other["seed"] = other["seed"] + 1
    assert not torch.equal(model(other)["loss"], a["loss"])


def test_identity_prompt_comes_from_another_frame():
    model = tiny()
    draws = model._draws(torch.arange(4), T=6)
    assert (draws["id_src"] != torch.arange(6)).all()
    assert draws["id_src"].min() >= 0 and draws["id_src"].max() < 6


# ------------------------------------------------------------------ masking

def test_masking_keeps_exactly_the_requested_number():
    noise = torch.rand(10, 144)
    ids_keep, mask, ids_restore = uniform_view(noise, 0.75)
    assert ids_keep.shape == (10, 36)
    assert (mask.sum(1) == 108).all()
    assert torch.equal(mask.gather(1, ids_keep), torch.zeros(10, 36))
    assert torch.equal(torch.argsort(torch.argsort(noise, 1), 1), ids_restore)


def test_lower_face_masking_hides_every_mouth_patch():
    mouth_px = torch.zeros(4, 96, 96, dtype=torch.bool)
    mouth_px[:, 60:84, 28:68] = True
    mouth = patch_fraction(mouth_px, 8)
    _, mask, _ = uniform_view(torch.rand(4, 144), 0.75, mouth, torch.tensor([True, False, True, False]))
    assert (mask[0][mouth[0] > 0] == 1).all() and (mask[2][mouth[2] > 0] == 1).all()
    assert (mask.sum(1) == 108).all()


def test_face_aware_view_prefers_face_patches():
    face = torch.zeros(200, 144)
    face[:, :72] = 1.0
    ids_keep, _, _ = face_aware_view(torch.rand(200, 144), 0.5, face, face_bias=0.5)
    frac_face = (ids_keep < 72).float().mean()
    assert frac_face > 0.7
    ids_plain, _, _ = keep_lowest(torch.rand(200, 144), 72)
    assert abs((ids_plain < 72).float().mean() - 0.5) < 0.05


def test_photometric_jitter_identity_and_range():
    x = torch.rand(3, 16, 16, 3)
    assert torch.allclose(photometric_jitter(x, torch.zeros(3, 7)), x, atol=1e-5)
    y = photometric_jitter(x, torch.rand(3, 7) * 2 - 1)
    assert y.min() >= 0 and y.max() <= 1 and not torch.allclose(x, y)


# ------------------------------------------------------------------ losses

def test_info_nce_equals_a_naive_loop():
    torch.manual_seed(0)
    B, T, E, r = 3, 5, 8, 1
    v, a = F.normalize(torch.randn(B * T, E), dim=1), F.normalize(torch.randn(B * T, E), dim=1)
    ids = torch.stack([torch.arange(B).repeat_interleave(T), torch.arange(T).repeat(B)], 1)
    scale = torch.tensor(math.log(10.0))
    loss, _ = info_nce(v, a, v, a, ids, ids, 0, scale, r)
    total = 0.0
    for x, y in ((v, a), (a, v)):
        for i in range(B * T):
            terms = []
            for j in range(B * T):
                same, near = ids[i, 0] == ids[j, 0], abs(int(ids[i, 1] - ids[j, 1])) <= r
                if j == i or not (same and near):
                    terms.append(10.0 * float(x[i] @ y[j]))
            total += -(10.0 * float(x[i] @ y[i])) + math.log(sum(math.exp(t) for t in terms))
    assert abs(float(loss) - total / (2 * B * T)) < 1e-4


def test_cross_cov_penalty_matches_formula_and_vanishes_for_independent_tokens():
    torch.manual_seed(0)
    x, y = torch.randn(4000, 6), torch.randn(4000, 6)
    assert float(cross_cov_penalty([x, y])) < 0.01
    assert float(cross_cov_penalty([x, x])) == pytest.approx(1 / 6, rel=1e-3)  # ||I||^2 / D^2


def test_frame_contrast_is_low_when_each_frame_finds_itself_and_trains_z_amb():
    torch.manual_seed(0)
    k = F.normalize(torch.randn(2, 8, 16), dim=-1)
    frames = torch.tensor([[0, 3, 5], [1, 2, 7]])
    own = torch.gather(k, 1, frames[..., None].expand(-1, -1, 16))
    assert float(frame_contrast(own, k, frames, 1, 0.05)) < 0.05
    assert float(frame_contrast(own.roll(1, dims=1), k, frames, 1, 0.05)) > 1.0
    model = tiny(loss={"w_amb": 1.0, "rec_frames": 2})
    out = model(random_batch(B=2, T=6))
    out["loss"].backward()
    assert float(out["amb"]) > 0 and float(model.proj_amb.weight.grad.abs().sum()) > 0
    assert not hasattr(tiny(), "proj_amb")                     # off by default: no extra weights
    mae_only = tiny("mae-only", loss={"w_amb": 1.0})
    assert not hasattr(mae_only, "proj_amb") and "amb" not in mae_only(random_batch(B=2, T=6))  # no contrast of any kind


def test_masked_mse_only_counts_masked_patches():
    target = torch.rand(2, 4, 12)
    pred = torch.zeros(2, 4, 12)
    mask = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    expect = target[0, 0].pow(2).mean()
    assert float(masked_mse(pred, target, mask, norm_pix=False)) == pytest.approx(float(expect))


# ------------------------------------------------------------------ audio

def test_log_mel_tiles_video_frames_and_finds_a_tone():
    t = torch.arange(10 * 640) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t)[None]
    mel = log_mel(tone)
    assert mel.shape == (1, 80, 40)
    low = log_mel(torch.sin(2 * torch.pi * 200 * t)[None])
    assert mel[0, :, 20].argmax() > low[0, :, 20].argmax()


def test_audio_tokens_are_local():
    """a_t depends on audio near t only (banded attention): far-away audio changes nothing."""
    torch.manual_seed(0)
    model = tiny().eval()
    audio = torch.randn(1, 30 * 640) * 0.1
    changed = audio.clone()
    changed[:, 25 * 640:] += 0.5
    a1, a2 = model.encode_audio(audio), model.encode_audio(changed)
    assert torch.allclose(a1[:, :15], a2[:, :15], atol=1e-5)
    assert not torch.allclose(a1[:, 25:], a2[:, 25:])


def test_wav2vec2_option_with_a_tiny_random_model(tmp_path):
    transformers = pytest.importorskip("transformers", reason="the wav2vec extra is not installed")
    cfg = transformers.Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=64, conv_dim=(32,) * 7)
    transformers.Wav2Vec2Model(cfg).save_pretrained(tmp_path / "w2v")
    model = SyncLipMAE(build_config(overrides=tiny_overrides(model={"audio": {"encoder": "wav2vec2",
                                                                              "wav2vec2": str(tmp_path / "w2v")}})))
    out = model(random_batch(T=6))
    out["loss"].backward()
    assert not any(p.requires_grad for p in model.audio.backbone.parameters())
    assert model.audio.out[1].weight.grad is not None
    assert model.encode(random_batch(T=6)["frames"], random_batch(T=6)["audio"])["a"].shape == (2, 6, 32)
