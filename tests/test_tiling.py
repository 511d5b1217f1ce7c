import pytest
import torch
import torch.nn.functional as F

from swift_core.tiling import blend_ramp, tile_starts, tiled_apply


def test_tile_starts_cover_everything():
    for length, tile, ov in [(100, 32, 8), (64, 64, 8), (65, 64, 8), (10, 4, 20)]:
        starts = tile_starts(length, tile, ov)
        covered = set()
        for s in starts:
            covered |= set(range(s, min(length, s + max(tile, 1) if tile > 0 else length)))
        assert covered == set(range(length)) or tile >= length


def test_pointwise_fn_is_exact_when_tiled_and_state_is_per_tile():
    x = torch.randn(1, 3, 2, 40, 56)
    calls = {}

    def fn(t, state):
        state["n"] = state.get("n", 0) + 1
        calls[id(state)] = state["n"]
        return (t * 2 + 1).repeat_interleave(2, -1).repeat_interleave(2, -2)

    states = {}
    out1 = tiled_apply(x, fn, tile=16, overlap=4, scale=2, states=states)
    tiled_apply(x, fn, tile=16, overlap=4, scale=2, states=states)
    want = (x * 2 + 1).repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert torch.allclose(out1, want, atol=1e-5)
    assert len(states) > 1 and all(s["n"] == 2 for s in states.values())   # state carried


def test_local_conv_tiled_close_to_untiled_and_overlap_clamped():
    x = torch.randn(1, 1, 64, 64)
    k = torch.ones(1, 1, 3, 3) / 9
    fn = lambda t, s: F.conv2d(t, k, padding=1)
    full = fn(x, {})
    tiled = tiled_apply(x, fn, tile=24, overlap=8, scale=1, states={})
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    assert (tiled - full)[inner].abs().max() < 0.15 * full.abs().max()   # seams are feathered
    tiny = tiled_apply(x, fn, tile=4, overlap=50, scale=1, states={})  # overlap > tile: clamped
    assert tiny.shape == full.shape and torch.isfinite(tiny).all()
    assert torch.equal(blend_ramp(6, 10, False, False), blend_ramp(6, 3, False, False))


def causal(t, state):
    """A causal temporal op with its cache in ``state``, upsampling 2x in space: each output
    frame is the running sum of its pixel over the frames so far, as a causal VAE carries its
    cache from one call to the next."""
    carry = state.get("sum", torch.zeros_like(t[:, :, :1]))
    out = torch.cumsum(torch.cat([carry, t], dim=2), dim=2)[:, :, 1:]
    state["sum"] = out[:, :, -1:]
    return out.repeat_interleave(2, -1).repeat_interleave(2, -2)


@pytest.mark.parametrize("tile", [0, 16])
def test_the_chunk_plan_does_not_change_the_frames(tile):
    """The streaming decoder's plan in time (2 frames a call, 5, all at once) gives the same
    output when the causal state is carried per tile: exact math, so identical up to float
    rounding; a plan that dropped the state would not be (checked)."""
    x = torch.rand(1, 3, 21, 40, 56)
    runs = {}
    for chunk in (2, 5, 21):
        states = {}
        runs[chunk] = torch.cat([tiled_apply(x[:, :, i:i + chunk], causal, tile, 4, 2, states)
                                 for i in range(0, 21, chunk)], dim=2)
    assert torch.allclose(runs[2], runs[21], atol=1e-5) and torch.allclose(runs[5], runs[21],
                                                                            atol=1e-5)
    fresh = torch.cat([tiled_apply(x[:, :, i:i + 5], causal, tile, 4, 2, {})
                       for i in range(0, 21, 5)], dim=2)
    assert not torch.allclose(fresh, runs[21], atol=1e-2)
