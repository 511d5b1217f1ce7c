"""sample_csg through a real (tiny, random) Wan 2.2 TI2V architecture from diffusers."""
import pytest
import torch

from swift_core import diffusers_wan_denoiser, sample_csg
from swift_core.adapters import positioned_rope

from swift_testing.tiny_wan import text_context, tiny_wan

T, H, W = 7, 8, 8


def run(model, mode, rope, seed=0, reference_scale=1.0, m=3, n=1):
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 48, T, H, W, generator=g)
    reference = torch.randn(1, 48, T, H, W, generator=g) * reference_scale
    anchor = reference[:, :, :1].clone()
    sigmas = torch.tensor([1.0, 0.9375, 0.8333, 0.625, 0.0])
    if mode == "refine":
        sigmas = sigmas[2:]
    with torch.no_grad():
        return sample_csg(diffusers_wan_denoiser(model, text_context()), noise, sigmas,
                          anchor=anchor, reference=reference, m=m, n=n, mode=mode, rope=rope)


@pytest.fixture(scope="module")
def models():
    return {"swifti2v": tiny_wan(in_channels=96), "refine": tiny_wan(in_channels=48)}


@pytest.mark.parametrize("mode", ["swifti2v", "refine"])
@pytest.mark.parametrize("rope", ["window", "absolute"])
def test_runs_finite_and_deterministic(models, mode, rope):
    a = run(models[mode], mode, rope)
    b = run(models[mode], mode, rope)
    assert a.shape == (1, 48, T, H, W)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a[:, :, 1:], run(models[mode], mode, rope, seed=1)[:, :, 1:])


def test_rope_mode_changes_the_result(models):
    a = run(models["swifti2v"], "swifti2v", "window")
    b = run(models["swifti2v"], "swifti2v", "absolute")
    assert torch.equal(a[:, :, :4], b[:, :, :4])      # first window: positions 0..3 either way
    assert not torch.allclose(a[:, :, 4:], b[:, :, 4:])


def test_reference_reaches_the_model(models):
    a = run(models["swifti2v"], "swifti2v", "window")
    b = run(models["swifti2v"], "swifti2v", "window", reference_scale=2.0)
    assert not torch.allclose(a[:, :, 1:], b[:, :, 1:])


def test_positioned_rope_matches_diffusers_for_contiguous_positions(models):
    model = models["swifti2v"]
    hs = torch.zeros(1, 96, 5, 8, 8)
    for mine, theirs in zip(positioned_rope(model.rope, hs, torch.arange(5)), model.rope(hs)):
        assert torch.equal(mine, theirs)
    shifted = positioned_rope(model.rope, hs, torch.arange(3, 8))
    assert not torch.equal(shifted[0], model.rope(hs)[0])


def test_without_csg_baseline_runs(models):
    out = run(models["swifti2v"], "swifti2v", "window", m=T)
    assert torch.isfinite(out).all()
