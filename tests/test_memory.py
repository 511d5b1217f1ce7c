import pytest

from bench.tinywan_probe import probe_in_subprocess

from swift_core import (WAN22_TI2V_5B, WanDiTConfig, choose_m, max_window_blocks,
                        window_activation_bytes)



def measured_peak_mib(blocks, latent, dim_heads, ffn):
    return probe_in_subprocess("--forward-only", "--blocks", str(blocks), "--latent", str(latent),
                               str(latent), "--dim-heads", str(dim_heads),
                               "--ffn", str(ffn))["peak_mib"]


@pytest.mark.parametrize("blocks,latent,heads,ffn", [(5, 64, 2, 256), (4, 64, 4, 512)])
def test_estimate_within_30_percent_of_measured(blocks, latent, heads, ffn):
    cfg = WanDiTConfig(dim=32 * heads, heads=heads, ffn=ffn, layers=2, in_channels=96)
    est = window_activation_bytes(cfg, blocks, latent, latent, dtype_bytes=4,
                                  per_token_timestep=True) / 2**20
    meas = measured_peak_mib(blocks, latent, heads, ffn)
    assert 0.7 * meas <= est <= 1.3 * meas, (est, meas)


def test_estimate_scales_with_window_not_video():
    a = window_activation_bytes(WAN22_TI2V_5B, max_window_blocks(21, 3, 1), 88, 160)
    b = window_activation_bytes(WAN22_TI2V_5B, max_window_blocks(81, 3, 1), 88, 160)
    assert a == b
    assert window_activation_bytes(WAN22_TI2V_5B, 21, 88, 160) > 4 * a


def test_choose_m():
    cfg = WAN22_TI2V_5B
    per5 = window_activation_bytes(cfg, 5, 88, 160)
    assert choose_m(cfg, 21, 88, 160, per5) == 3
    assert choose_m(cfg, 21, 88, 160, per5 - 1) == 2
    assert choose_m(cfg, 21, 88, 160, 10**15) == 20
    with pytest.raises(ValueError, match="budget_bytes=1: even M=1"):
        choose_m(cfg, 21, 88, 160, 1)


def test_flops_match_spec_count():
    # SPEC: a 5-block window at 2K is 17,600 tokens, about 271 TFLOP per forward
    cfg = WAN22_TI2V_5B
    assert cfg.tokens(5, 88, 160) == 17600
    assert 250e12 < cfg.flops(5, 88, 160) < 290e12
