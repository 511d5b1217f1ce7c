"""The seam report on synthetic videos: a jump at every segment boundary is flagged, the same
jumps elsewhere and a smooth pan are not, and the plot marks the boundaries where the plan puts
them."""
import pytest
import torch
import torch.nn.functional as F

from swift_core import plan_segments
from swift_core.plan import describe_plan, read_plan
from swift_core.seam_plot import BOUNDARY, PANEL, TOP, plot, plot_x
from swift_core.seams import (GAP_FLAG, PERIODIC_FLAG, SeamMeter, boundary_frames,
                              segment_frames, verdict, window_joins, window_span)

FRAMES, H, W = 81, 64, 96            # 21 latent blocks
PLAN = plan_segments(21, 3, 1)       # 7 segments, boundaries at frames 13, 25, ..., 73


def pan(frames=FRAMES, seed=0):
    """A smooth random texture panning 1 px a frame."""
    g = torch.Generator().manual_seed(seed)
    tex = torch.rand(1, 3, H, W + frames, generator=g)
    tex = F.avg_pool2d(F.pad(tex, (3, 3, 3, 3), mode="replicate"), 7, stride=1)
    tex = 0.25 + 0.5 * (tex - tex.min()) / (tex.max() - tex.min())
    return torch.stack([tex[0, :, :, t:t + W] for t in range(frames)]).movedim(1, -1)


def with_steps(video, at):
    """+3% luma from each frame in ``at`` on (a staircase: a step at each)."""
    out = video.clone()
    for t in at:
        out[t:] += 0.03
    return out


def with_blur(video, at):
    out = video.clone()
    for t in at:
        x = out[t:t + 1].movedim(-1, 1)
        out[t] = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)[0].movedim(0, -1)
    return out


def report(video, plan=PLAN, chunk=7, stage1=None):
    meter = SeamMeter(stage1=stage1)
    for i in range(0, video.shape[0], chunk):          # in chunks, as a long video is read
        meter.add(video[i:i + chunk])
    return meter.summary(plan)


def test_boundaries_where_the_plan_puts_them():
    assert boundary_frames(PLAN) == [13, 25, 37, 49, 61, 73]
    assert segment_frames(PLAN)[0] == (1, 12) and segment_frames(PLAN)[-1] == (73, 80)


def test_luma_step_at_every_boundary_is_flagged():
    s = report(with_steps(pan(), boundary_frames(PLAN)))
    assert "luma_step" in s["flagged"]
    assert s["metrics"]["luma_step"]["gap_ratio"] >= GAP_FLAG
    assert "luma_step" in s["periodic"] and s["luma_autocorr"] >= PERIODIC_FLAG
    assert verdict(s).startswith("seams at segment boundaries")


def test_brief_blur_at_every_boundary_is_flagged():
    s = report(with_blur(pan(), boundary_frames(PLAN)))
    assert "structure" in s["flagged"], s["metrics"]["structure"]
    assert s["metrics"]["structure"]["gap_ratio"] >= GAP_FLAG
    assert s["metrics"]["structure"]["autocorr"] >= PERIODIC_FLAG


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smooth_pan_is_not_flagged(seed):
    s = report(pan(seed=seed))
    assert s["flagged"] == [], s["metrics"]
    assert all(abs(m["gap_ratio"] - 1) < 0.5 for m in s["metrics"].values())


def test_same_steps_off_the_boundaries_are_not_flagged():
    off = [t + 6 for t in boundary_frames(PLAN)]         # mid-segment
    s = report(with_steps(pan(), off))
    assert s["flagged"] == [], s["metrics"]
    assert s["metrics"]["luma_step"]["gap_ratio"] < 1
    # and another plan, whose boundaries are there, sees them
    other = read_plan(describe_plan(plan_segments(21, 3, 1, first=1), m=3, n=1))
    assert report(with_steps(pan(), off), plan=other)["flagged"] == []


def test_plan_must_match_the_video():
    with pytest.raises(Exception, match="make 77 frames, but the video has 81"):
        report(pan(), plan=plan_segments(20, 3, 1))


def test_fidelity_per_segment_against_stage1():
    video = pan()
    noisy = video.clone()
    g = torch.Generator().manual_seed(5)
    for k, (a, b) in enumerate(segment_frames(PLAN)):    # worse along the video
        noisy[a:b + 1] += 0.01 * k * torch.randn(noisy[a:b + 1].shape, generator=g)
    stage1 = F.interpolate(video.movedim(-1, 1), size=(32, 48), mode="area").movedim(1, -1)
    s = report(noisy, stage1=stage1)
    psnr = s["fidelity_psnr"]
    assert len(psnr) == len(PLAN)
    assert all(a > b for a, b in zip(psnr[1:], psnr[2:]))   # decreasing once noise starts
    assert s["fidelity_drop"] > 5


def test_plot_marks_the_boundaries():
    s = report(with_steps(pan(), boundary_frames(PLAN)))
    img = plot(s)
    assert img.shape[0] == 1 and img.shape[-1] == 3 and img.dtype == torch.float32
    px = (img[0] * 255).round().to(torch.uint8)
    red = (px[..., 0] == BOUNDARY[0]) & (px[..., 1] == BOUNDARY[1]) & (px[..., 2] == BOUNDARY[2])
    rows = red[TOP + 2:TOP + PANEL - 2]                    # inside the first panel
    cols = {int(c) for c in torch.nonzero(rows.float().mean(0) > 0.8).flatten()}
    assert cols == {plot_x(t - 0.5, FRAMES) for t in boundary_frames(PLAN)}


#: Stage I at 161 frames (41 latent blocks) in core's static windows of 21 blocks, overlap 8
LONG_PLAN = plan_segments(41, 3, 1)
WINDOWS = [list(range(0, 21)), list(range(13, 34)), list(range(20, 41))]


def long_report(video, windows=WINDOWS):
    meter = SeamMeter()
    for i in range(0, video.shape[0], 9):
        meter.add(video[i:i + 9])
    return meter.summary(LONG_PLAN, windows)


def test_stage1_window_joins_are_where_the_windows_meet():
    # window 2 starts at block 13 (frame 49), window 1 ends with block 20 (frame 80), ...
    assert window_joins(WINDOWS, 161) == [49, 77, 81, 133]
    # core's retain-first-frame puts block 0 in later windows: not a join
    assert window_span([0, 13, 14, 15]) == [13, 14, 15]
    assert window_span([0, 1, 2]) == [0, 1, 2]


def test_a_step_at_the_window_joins_is_flagged_and_not_at_the_segment_boundaries():
    joins = window_joins(WINDOWS, 161)
    s = long_report(with_steps(pan(161), joins))
    assert s["stage1_windows"]["joins"] == joins
    assert s["stage1_windows"]["windows"] == [[0, 80], [49, 132], [77, 160]]
    assert "luma_step" in s["flagged_windows"] and "luma_step" not in s["flagged"]
    assert "seams at Stage I's 3 context-window joins (" in verdict(s)
    smooth = long_report(pan(161))
    assert smooth["flagged_windows"] == [] and "no seam at Stage I's 3" in verdict(smooth)
    # one window: nothing to join, no section
    assert "stage1_windows" not in long_report(pan(161), [list(range(41))])
