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
