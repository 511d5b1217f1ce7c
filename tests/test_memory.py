import pytest

from swift_testing.probe import probe_in_subprocess

from swift_core import WAN22_TI2V_5B, WanDiTConfig, max_window_blocks, window_activation_bytes



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


def test_flops_match_spec_count():
    # SPEC: a 5-block window at 2K is 17,600 tokens, about 271 TFLOP per forward
    cfg = WAN22_TI2V_5B
    assert cfg.tokens(5, 88, 160) == 17600
    assert 250e12 < cfg.flops(5, 88, 160) < 290e12


def test_training_estimates_behind_the_readme():
    from swift_core.memory import (WAN22_TI2V_5B as c, training_checkpoint_bytes, training_flops,
                                   training_state_bytes)
    assert training_state_bytes(c, 8) == 16 * c.params // 8
    assert 9.5e9 < training_state_bytes(c, 8) < 10.0e9               # docs/training.md: 9.8 GB at N = 8
    assert training_flops(c, 6, 88, 160) == 4 * c.flops(6, 88, 160)
    assert 1.3e15 < training_flops(c, 6, 88, 160) < 1.5e15            # docs/training.md: 1.4 PFLOP (M3 N2)
    assert 0.75e15 < training_flops(c, 4, 88, 160) < 0.85e15          # docs/training.md: 0.8 PFLOP (M2 N1)
    assert 3.4 * 2**30 < training_checkpoint_bytes(c, 6, 88, 160) < 3.8 * 2**30   # about 3.6 GB
