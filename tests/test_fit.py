"""m=auto and tile_size=auto: the largest value whose estimate fits, monotone in free memory."""
import pytest

from swift_core.fit import M_CAP, MARGIN, TILE_MIN, choose_m, choose_tile
from swift_core.memory import (GIB, WAN22_TI2V_5B, max_window_blocks, vae_tile_bytes,
                               window_activation_bytes)
from swift_core.rules import SwiftInputError

LH, LW, T = 88, 160, 21        # 2560x1408, 81 frames


def need(m, n=1, batch=1):
    return window_activation_bytes(WAN22_TI2V_5B, max_window_blocks(T, m, n), LH, LW, batch=batch)


FREE = [int(g * GIB) for g in (0.5, 1.0, 1.3, 1.6, 1.9, 2.2, 3, 6, 12, 24, 80)]


@pytest.mark.parametrize("n", [0, 1, 2])
@pytest.mark.parametrize("batch", [1, 2])
def test_largest_m_that_fits_over_a_grid(n, batch):
    last = 0
    for free in FREE:
        try:
            fit = choose_m(free, WAN22_TI2V_5B, T, LH, LW, n, batch=batch)
        except SwiftInputError as e:
            assert need(1, n, batch) * MARGIN > free
            assert "m=1" in str(e) and "width/height" in str(e) and last == 0
            continue
        m = fit.value
        assert 1 <= m <= M_CAP
        assert need(m, n, batch) * MARGIN <= free                    # it fits...
        assert m == M_CAP or need(m + 1, n, batch) * MARGIN > free   # ...and one more does not
        assert m >= last                                             # monotone in free memory
        assert f"-> {m}" in fit.reason
        last = m
    assert last == M_CAP


def test_auto_m_never_beyond_the_video():
    assert choose_m(80 * GIB, WAN22_TI2V_5B, 3, LH, LW, 1).value == 2
    assert choose_m(80 * GIB, WAN22_TI2V_5B, 2, LH, LW, 1).value == 1


def test_refusal_names_what_to_lower():
    with pytest.raises(SwiftInputError) as e:
        choose_m(GIB // 4, WAN22_TI2V_5B, T, LH, LW, 2, batch=2, where="cuda:0")
    msg = str(e.value)
    assert msg.startswith("m=auto") and "cuda:0" in msg and "n (now 2)" in msg and "cfg to 1" in msg


def test_refusal_below_m1_names_the_largest_size_that_fits():
    """Below the floor that keeps temporal context (M = 1) the run is refused, never planned
    degenerate, naming the largest size of the same aspect (multiples of 32) whose M = 1 window
    fits: that size then plans, the next size up does not."""
    import re
    budget = GIB // 2
    with pytest.raises(SwiftInputError) as e:
        choose_m(budget, WAN22_TI2V_5B, T, LH, LW, 1)
    w, h = map(int, re.search(r"at most (\d+)x(\d+) with this aspect fits", str(e.value)).groups())
    assert w % 32 == 0 and h % 32 == 0 and w < LW * 16 and abs(w / h - LW / LH) < 0.05
    assert choose_m(budget, WAN22_TI2V_5B, T, h // 16, w // 16, 1).value >= 1
    with pytest.raises(SwiftInputError):
        choose_m(budget, WAN22_TI2V_5B, T, h // 16 + 2, w // 16 + 4, 1)
    with pytest.raises(SwiftInputError) as e:          # nothing fits: no size is promised
        choose_m(1, WAN22_TI2V_5B, T, LH, LW, 1)
    assert "at most" not in str(e.value)


def test_tile_choice_is_largest_fitting_and_monotone():
    h, w = 1408, 2560
    last = 0
    for free in [int(g * GIB) for g in (0.2, 0.6, 1, 2, 4, 8, 16, 32, 64)]:
        try:
            fit = choose_tile(free, h, w)
        except SwiftInputError as e:
            assert "tile_size=auto" in str(e) and last == 0
            continue
        t = fit.value
        assert t % 64 == 0 or t == max(h, w)
        th, tw = min(t, h), min(t, w)
        assert vae_tile_bytes(th, tw, frame_h=h, frame_w=w) * MARGIN <= free
        if t < max(h, w):
            nxt = t + 64
            assert vae_tile_bytes(min(nxt, h), min(nxt, w), frame_h=h, frame_w=w) * MARGIN > free
        assert t >= last
        last = t
    assert last == max(h, w)                       # the whole frame once it fits
    assert choose_tile(64 * GIB, h, w).reason.endswith("free on the device")
    assert "whole frame" in choose_tile(64 * GIB, h, w).reason


def test_tile_refusal():
    with pytest.raises(SwiftInputError, match=f"even {TILE_MIN} px tiles"):
        choose_tile(GIB // 8, 1408, 2560)
    # the encoder needs less per pixel than the decoder
    assert choose_tile(4 * GIB, 1408, 2560, decode=False).value >= choose_tile(4 * GIB, 1408, 2560).value


def test_small_frames_get_the_whole_frame():
    assert choose_tile(GIB, 64, 64).value == 64
    assert choose_tile(GIB, 256, 96).value == 256


class FakeProbe:
    """What the device says the first window used: ``factor`` times the estimate."""

    def __init__(self, factor):
        self.factor, self.started = factor, 0

    def start(self):
        self.started += 1

    def peak(self):
        return int(self.factor * window_activation_bytes(WAN22_TI2V_5B, self.blocks, LH, LW))


def measured_run(factor, *, m, ceiling, free_gib, blocks=T, n=1):
    """run_csg over a plan of ``m`` with a window sampler that records each window's size, and
    FirstWindowFit on a fake probe: (windows sampled, the plan that ran, its changes)."""
    import torch
    from swift_core.fit import FirstWindowFit
    from swift_core.plan import plan_segments
    from swift_core.sampling import run_csg

    probe, windows, logs = FakeProbe(factor), [], []

    def sample_window(x, noise, seg, **kw):
        windows.append(len(seg.window))
        probe.blocks = len(seg.window)
        return x

    fit = FirstWindowFit(
        probe, lambda b: window_activation_bytes(WAN22_TI2V_5B, b, LH, LW),
        lambda scale, cap: choose_m(int(free_gib * GIB), WAN22_TI2V_5B, blocks, LH, LW, n,
                                    scale=scale, cap=cap),
        n, planned_m=m, ceiling=ceiling, log=logs.append)
    z = torch.zeros(1, 1, blocks, 1, 1)
    _, ran = run_csg(z[:, :, :1], z, z, torch.linspace(1, 0, 3), plan_segments(blocks, m, n),
                     fit.wrap(sample_window), mode="refine", rope="window", next_plan=fit)
    assert probe.started == 1                          # the first window only
    return windows, ran, fit.changes, logs


def test_a_first_window_above_the_estimate_lowers_m_for_the_rest():
    """auto chose M=3 on the estimate (a 5-block window fits 2.2 GiB); the first window really
    used 1.6x: the rest runs at the M whose measured window fits."""
    assert choose_m(int(2.2 * GIB), WAN22_TI2V_5B, T, LH, LW, 1).value == 3
    windows, ran, changes, logs = measured_run(1.6, m=3, ceiling=M_CAP, free_gib=2.2)
    assert windows[0] == 4                    # the first window: anchor + 3 blocks
    want = choose_m(int(2.2 * GIB), WAN22_TI2V_5B, T, LH, LW, 1, scale=1.6).value
    assert want < 3 and max(len(s.current) for s in ran[1:]) == want
    assert all(w <= max_window_blocks(T, want, 1) for w in windows[1:])
    assert len(changes) == 1 and f"m 3 -> {want} from segment 2 on" in changes[0]
    assert "1.60x the estimate" in logs[0]                # more than 15% off: logged
    assert sum(len(s.current) for s in ran) == T - 1      # every block, once


def test_a_first_window_below_the_estimate_never_raises_an_explicit_m():
    """The user set m=2; the window used half the estimate and 80 GiB are free: M stays 2."""
    windows, ran, changes, _ = measured_run(0.5, m=2, ceiling=2, free_gib=80)
    assert changes == [] and {len(s.current) for s in ran[:-1]} == {2}
    # on auto, the same measure lets M go up, to auto's cap and no further
    windows, ran, changes, _ = measured_run(0.5, m=2, ceiling=M_CAP, free_gib=80)
    assert max(len(s.current) for s in ran) == M_CAP and "m 2 -> 3" in changes[0]


def test_a_measure_within_the_tolerance_changes_nothing_and_logs_nothing():
    windows, ran, changes, logs = measured_run(1.05, m=3, ceiling=M_CAP, free_gib=80)
    assert changes == logs == [] and {len(s.current) for s in ran[:-1]} == {3}


class FakeTileProbe:
    """What the device says the VAE decoder's first full block used: ``factor`` times the
    estimate of the tile it ran at."""

    def __init__(self, factor, estimate):
        self.factor, self.estimate, self.started, self.tile = factor, estimate, 0, None

    def start(self):
        self.started += 1

    def peak(self):
        return int(self.factor * self.estimate(self.tile))


def tile_fit(factor, *, ceiling, free_gib, h=1408, w=2560):
    """FirstTileFit on a fake probe, choosing on ``free_gib`` as tile_size=auto does."""
    from swift_core.fit import FirstTileFit

    def estimate(tile):
        return vae_tile_bytes(min(tile, h), min(tile, w), frame_h=h, frame_w=w)

    probe, logs = FakeTileProbe(factor, estimate), []
    fit = FirstTileFit(probe, estimate,
                       lambda scale: choose_tile(int(free_gib * GIB), h, w, scale=scale),
                       ceiling=ceiling, log=logs.append)

    def settle(tile, lowered=False):
        fit.start()
        probe.tile = tile
        return fit.settle(tile, 2, lowered)

    return fit, settle, logs


def test_a_first_vae_block_above_the_estimate_lowers_the_tile_for_the_rest():
    """auto chose the whole frame on the estimate; the first block really used 1.8x: the rest
    is tiled at the largest tile whose measured need fits."""
    free = 32.0
    assert choose_tile(int(free * GIB), 1408, 2560).value == 2560
    fit, settle, logs = tile_fit(1.8, ceiling=1 << 30, free_gib=free)
    new = settle(2560)
    want = choose_tile(int(free * GIB), 1408, 2560, scale=1.8).value
    assert new == want < 2560
    assert vae_tile_bytes(min(new, 1408), new, frame_h=1408, frame_w=2560) * 1.8 * MARGIN \
        <= free * GIB
    assert fit.changes == [f"measured: the VAE decoder's first block used "
                           f"{fit.measured / GIB:.2f} GiB (1.80x the estimate): tile_size 2560 "
                           f"-> {want} px from block 2 on"]
    assert "1.80x the estimate" in logs[0]


def test_a_first_vae_block_below_the_estimate_never_raises_an_explicit_tile():
    fit, settle, _ = tile_fit(0.5, ceiling=512, free_gib=80)
    assert settle(512) == 512 and fit.changes == []
    fit, settle, _ = tile_fit(0.5, ceiling=1 << 30, free_gib=80)      # auto: up to the frame
    assert settle(512) == 2560 and "tile_size 512 -> 2560" in fit.changes[0]
    fit, settle, _ = tile_fit(0.5, ceiling=1 << 30, free_gib=80)      # halved by an OOM retry
    assert settle(512, lowered=True) == 512 and fit.changes == []


def test_a_vae_measure_within_the_tolerance_or_absent_changes_nothing():
    fit, settle, logs = tile_fit(1.1, ceiling=1 << 30, free_gib=8.0)
    assert settle(1024) == 1024 and fit.changes == logs == []
    fit, settle, logs = tile_fit(3.0, ceiling=1 << 30, free_gib=8.0)
    fit.probe.peak = lambda: None                       # a CPU: nothing measured
    assert settle(1024) == 1024 and fit.changes == logs == []
