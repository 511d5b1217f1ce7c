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
    assert 7.0 * 2**30 < training_checkpoint_bytes(c, 6, 88, 160) < 7.5 * 2**30   # fp32: 7.25 GiB


#: One training step of the real Wan2.2-TI2V-5B traced by ``python -m bench.train_memory``
#: (FSDP2 memory tracker, FakeTensorMode; docs/training.md): (latent h, w), window blocks,
#: activation checkpointing, traced activations in GiB.
TRAINING_TRACES = [((88, 160), 4, True, 9.27), ((88, 160), 4, False, 145.89),
                   ((88, 160), 6, True, 13.84), ((88, 160), 6, False, 218.56),
                   ((68, 120), 4, True, 5.42), ((68, 120), 4, False, 84.78),
                   ((68, 120), 6, True, 8.07), ((68, 120), 6, False, 126.89)]


@pytest.mark.parametrize("latent,blocks,ckpt,traced", TRAINING_TRACES)
def test_training_activation_estimate_within_15_percent_of_the_trace(latent, blocks, ckpt,
                                                                       traced):
    from swift_core.memory import WAN22_TI2V_5B as c, training_activation_bytes
    est = training_activation_bytes(c, blocks, *latent, checkpointing=ckpt) / 2**30
    assert 0.85 * traced <= est <= 1.15 * traced, (est, traced)


def test_window_of_the_memory_model_is_the_largest_window_the_run_builds():
    """For every length up to 321 frames and every (m, n) a user can set here, the window the
    memory check sizes (max_window_blocks) is the largest window run_csg really hands its window
    sampler (counted from the calls, not from the plan)."""
    import torch

    from swift_core import plan_segments, run_csg
    from swift_core.sizes import latent_blocks

    for frames in range(5, 322, 4):
        blocks = latent_blocks(frames)
        z = torch.zeros(1, 1, blocks, 1, 1)
        for m in range(1, 7):
            for n in range(0, 4):
                built = []

                def sample_window(x, noise, seg, **_):
                    built.append(x.shape[2])
                    return x

                run_csg(z[:, :, :1], z, z, torch.tensor([1.0, 0.0]), plan_segments(blocks, m, n),
                        sample_window, mode="swifti2v", rope="window")
                assert max_window_blocks(blocks, m, n) == max(built), (frames, m, n)
