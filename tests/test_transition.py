"""Stage-transition rules (Eq. 12): strength, the k-step schedule, clips of a longer video."""
import pytest
import torch

from swift_core.rules import check_strength, check_transition_steps
from swift_core.transition import clip_starts, frames_needed, transition_sigmas


def test_schedule_scaled_to_start_at_strength():
    full = torch.tensor([1.0, 0.8, 0.5, 0.0])
    out = transition_sigmas(full, 0.1)
    assert torch.allclose(out, torch.tensor([0.1, 0.08, 0.05, 0.0]))
    assert torch.equal(transition_sigmas(full, 1.0), full)          # s = 1: Stage I's own
    assert torch.equal(transition_sigmas(torch.tensor([1.0, 0.0]), 0.3), torch.tensor([0.3, 0.0]))


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
