"""Frame 0 (the input image) is framed like frames 1.. (Stage I's) at every target size."""
import pytest
import torch

from swift_core import resize_frames
from swift_core.reference import fit_low_res, stage1_image
from swift_core.sizes import stage1_size

SRC_W, SRC_H = 2600, 1900              # the user's photo: neither 16:9 nor the target's aspect


def blob_image(cx, cy, w=SRC_W, h=SRC_H, sigma=40.0):
    """A Gaussian blob at (cx, cy) on black: an image [1, h, w, 3]."""
    y = torch.arange(h, dtype=torch.float32)[:, None]
    x = torch.arange(w, dtype=torch.float32)[None, :]
    g = torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
    return g[None, :, :, None].expand(1, h, w, 3).contiguous()


def centroid(frame):
    i = frame[..., 0].clamp_min(0)
    i = torch.where(i > 0.2, i, torch.zeros_like(i))
    y = torch.arange(i.shape[0], dtype=torch.float32)[:, None]
    x = torch.arange(i.shape[1], dtype=torch.float32)[None, :]
    return float((x * i).sum() / i.sum()), float((y * i).sum() / i.sum())


def crop_scale(width, height):
    """Target pixels per source pixel once the source is trimmed to width:height."""
    return min(width / SRC_W, height / SRC_H) if SRC_W * height > SRC_H * width else \
        width / SRC_W


@pytest.mark.parametrize("width,height", [(2560, 1440), (1920, 1056), (1440, 2560),
                                          (2560, 1408)])
def test_frame0_and_frame1_of_a_panned_pattern_align(width, height):
    pan = 24.0                                          # source px the camera pans per frame
    cx, cy = 0.7 * SRC_W, 0.35 * SRC_H
    frame0 = resize_frames(blob_image(cx, cy), width, height, crop="center")[0]
    low1 = stage1_image(blob_image(cx + pan, cy), width, height)            # Stage I frame 1
    assert tuple(low1.shape[1:3]) == stage1_size(width, height)[::-1]
    frame1 = fit_low_res(low1, width, height)[0]
    (x0, y0), (x1, y1) = centroid(frame0), centroid(frame1)
    s = crop_scale(width, height)
    assert abs((x1 - x0) - pan * s) <= 1.0 and abs(y1 - y0) <= 1.0, (x1 - x0, pan * s, y1 - y0)


def test_the_old_rule_is_off_by_many_pixels_at_2560x1440():
    """Trimming the image to Stage I's snapped aspect (the old rule) misframes frame 0."""
    width, height = 2560, 1440
    cx, cy = 0.7 * SRC_W, 0.35 * SRC_H
    w1, h1 = stage1_size(width, height)
    frame0 = resize_frames(blob_image(cx, cy), width, height, crop="center")[0]
    old_low = resize_frames(blob_image(cx, cy), w1, h1, crop="center")
    frame1 = resize_frames(old_low, width, height)[0]
    (x0, y0), (x1, y1) = centroid(frame0), centroid(frame1)
    assert max(abs(x1 - x0), abs(y1 - y0)) > 5.0


def test_low_res_video_of_any_size_is_trimmed_to_the_target_aspect():
    """A 4:3 video made elsewhere, for a 16:9 target: trimmed like the image, not stretched."""
    cx, cy = 0.5 * SRC_W, 0.5 * SRC_H
    video = resize_frames(blob_image(cx, cy), 640, 480, crop="center")
    out = fit_low_res(video, 1280, 704)
    frame0 = resize_frames(blob_image(cx, cy), 1280, 704, crop="center")[0]
    assert out.shape == (1, 704, 1280, 3)
    (x0, y0), (x1, y1) = centroid(frame0), centroid(out[0])
    assert abs(x1 - x0) <= 1.0 and abs(y1 - y0) <= 1.0
    stretched = fit_low_res(video, 1280, 704, crop="disabled")
    assert stretched.shape == out.shape and not torch.allclose(stretched, out, atol=1e-3)
