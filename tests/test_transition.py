"""Stage-transition rules (Eq. 12): strength, the k-step schedule, clips of a longer video."""
import pytest
import torch

from swift_core.rules import check_strength, check_transition_steps
from swift_core.schedule import flow_sigmas, shifted_sigma
from swift_core.transition import (clip_seed, clip_starts, clip_synthesized, frames_needed,
                                   start_sigma, transition_sigmas)


def test_raw_sigma_reading_scales_the_schedule_to_start_at_strength():
    full = torch.tensor([1.0, 0.8, 0.5, 0.0])
    out = transition_sigmas(full, 0.1, reading="raw_sigma")
    assert torch.allclose(out, torch.tensor([0.1, 0.08, 0.05, 0.0]))
    assert torch.equal(transition_sigmas(full, 1.0, reading="raw_sigma"), full)
    assert torch.equal(transition_sigmas(torch.tensor([1.0, 0.0]), 0.3, reading="raw_sigma"),
                       torch.tensor([0.3, 0.0]))


def test_before_shift_reading_is_diffsynth_studios():
    """DiffSynth-Studio's set_timesteps(k, denoising_strength=s, shift): timesteps from s down to
    0 evenly, then shifted. Core's simple scheduler on a flow model gives flow_sigmas(k, shift);
    brought to s it must equal that."""
    for shift in (5.0, 8.0):
        for k in (1, 2, 4):
            for s in (0.01, 0.1, 0.3, 0.7):
                got = transition_sigmas(flow_sigmas(k, shift), s, shift)
                want = shifted_sigma(torch.linspace(s, 0.0, k + 1, dtype=torch.float64), shift)
                assert torch.allclose(got.double(), want, atol=1e-6), (shift, k, s)
                assert got[0] == pytest.approx(start_sigma(s, shift))
        full = flow_sigmas(4, shift)
        assert torch.allclose(transition_sigmas(full, 1.0, shift), full)   # s = 1: Stage I's own
    assert start_sigma(0.1, 5.0) == pytest.approx(0.35714, abs=1e-5)     # 0.5 / 1.4
    assert start_sigma(0.1, 8.0) == pytest.approx(0.47059, abs=1e-5)     # 0.8 / 1.7
    assert start_sigma(0.1, 5.0, "raw_sigma") == 0.1
    with pytest.raises(ValueError, match="strength_reading='shifted': must be one of"):
        start_sigma(0.1, 5.0, "shifted")


def test_each_clip_has_its_own_stable_seed_and_kind():
    starts = range(0, 8100, 81)
    seeds = {clip_seed(42, "walk", s) for s in starts}
    assert len(seeds) == len(starts)                                   # no two clips alike
    assert clip_seed(42, "walk", 81) == clip_seed(42, "walk", 81)      # stable
    assert clip_seed(42, "walk", 81) != clip_seed(42, "cat", 81) != clip_seed(7, "walk", 81)
    assert all(0 <= s < 2**63 for s in seeds)
    kinds = [clip_synthesized(0.3, f"video_{i}", 81 * j) for i in range(100) for j in range(20)]
    assert 0.27 < sum(kinds) / len(kinds) < 0.33
    assert kinds == [clip_synthesized(0.3, f"video_{i}", 81 * j)
                     for i in range(100) for j in range(20)]
    assert all(clip_synthesized(1.0, "v", s) for s in starts)
    assert not any(clip_synthesized(0.0, "v", s) for s in starts)
    one_video = {clip_synthesized(0.5, "walk", s) for s in starts}
    assert one_video == {True, False}                    # a video's clips are of both kinds
    with pytest.raises(ValueError, match="synthesize_fraction=1.5"):
        clip_synthesized(1.5, "v", 0)


@pytest.mark.parametrize("s", [0, -0.1, 1.01, True, "0.1"])
def test_strength_outside_range(s):
    with pytest.raises(ValueError, match=r"strength=.*must be in \(0, 1\]"):
        check_strength(s)


@pytest.mark.parametrize("k", [0, -1, 1.5])
def test_steps_below_one(k):
    with pytest.raises(ValueError, match=r"steps=.*>= 1"):
        check_transition_steps(k)


def test_clip_starts():
    assert clip_starts(17, 17) == [0]
    assert clip_starts(40, 17, max_clips=5) == [0, 17]                   # back to back
    assert clip_starts(40, 17, start=2, stride=8, max_clips=5) == [2, 10, 18]
    assert frames_needed(17, start=2, stride=8, max_clips=5) == 2 + 4 * 8 + 17
    with pytest.raises(ValueError, match="video: 12 frames; a clip of length=17 from start=0 "
                                         "needs at least 17"):
        clip_starts(12, 17)
    with pytest.raises(ValueError, match="length=16: must be 4k"):
        clip_starts(40, 16)


def test_clips_every_nth_frame():
    assert clip_starts(40, 17, frame_step=2) == [0]
    assert frames_needed(17, frame_step=2) == 33
    assert clip_starts(70, 17, max_clips=3, frame_step=2) == [0, 33]        # back to back: 33 apart
    with pytest.raises(ValueError, match=r"length=17 \(one frame in 2: 33 source frames\) from start=0 "
                                         r"needs at least 33"):
        clip_starts(30, 17, frame_step=2)
    with pytest.raises(ValueError, match="frame_step=0: must be a whole number >= 1"):
        clip_starts(30, 17, frame_step=0)
