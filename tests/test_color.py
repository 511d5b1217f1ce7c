import kornia
import pytest
import torch

from swift_core.color import lab_stats, match_color


def photo(seed=0, n=1, h=48, w=64):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, h // 8, w // 8, 3, generator=g)
    return torch.nn.functional.interpolate(base.movedim(-1, 1), size=(h, w),
                                           mode="bilinear").movedim(1, -1).clamp(0.05, 0.95)


def lab_drift(frames, gain=0.9, shift=(3.0, 7.0, -6.0)):
    lab = kornia.color.rgb_to_lab(frames.movedim(-1, 1))
    lab = lab * torch.tensor([gain, 1.0, 1.0])[:, None, None] + torch.tensor(shift)[:, None, None]
    return kornia.color.lab_to_rgb(lab, clip=True).movedim(1, -1)


def test_a_known_colour_shift_is_removed():
    image = photo()
    frames = photo(n=5).clone()
    frames[:] = image                                    # the video holds the image's colours
    drifted = lab_drift(frames)                          # a colour cast and a contrast loss
    fixed = match_color(drifted, image)
    err_before = float((drifted - frames).abs().mean())
    err_after = float((fixed - frames).abs().mean())
    assert err_after < 0.1 * err_before, (err_before, err_after)
    # a per-channel RGB gain is not a L*a*b* statistics shift, but it is still clearly reduced
    rgb = (frames * torch.tensor([1.15, 0.95, 0.8]) + torch.tensor([0.04, 0.0, -0.03])).clamp(0, 1)
    assert float((match_color(rgb, image) - frames).abs().mean()) < \
        0.5 * float((rgb - frames).abs().mean())
    m_img, s_img = lab_stats(image)
    m_fix, s_fix = lab_stats(fixed)
    assert torch.allclose(m_fix, m_img.expand_as(m_fix), atol=1.0)       # L*a*b* units
    assert torch.allclose(s_fix, s_img.expand_as(s_fix), atol=1.0)


def test_off_and_strength():
    image, frames = photo(0), photo(1, n=3)
    assert match_color(frames, image, "off") is frames
    half = match_color(frames, image, "lab", strength=0.5)
    full = match_color(frames, image, "lab")
    d_half, d_full = float((half - frames).abs().mean()), float((full - frames).abs().mean())
    assert 0 < d_half < d_full
    with pytest.raises(ValueError, match="color_match='wavelet'"):
        match_color(frames, image, "wavelet")
