"""The CSG training step (swift_core.training), the widened model and the export (issue 11)."""
import copy

import pytest
import torch

from swift_core.adapters import flow_denoised
from swift_core.plan import plan_segments
from swift_core.training import (PAIRS, csg_training_loss, draw_pair, draw_segment,
                                 masked_velocity_loss, training_window)

pytest.importorskip("diffusers")
from swift_train.export import to_comfy, write  # noqa: E402
from swift_train.model import comfy_to_diffusers, load_wan, widen_patch_embedding  # noqa: E402


def latents(t=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 48, t, 2, 2, generator=g), torch.randn(1, 48, t, 2, 2, generator=g)


def test_window_context_is_clean_at_timestep_zero_and_segment_noised():
    x0, ref = latents()
    seg = plan_segments(7, 2, 2)[1]                   # context (0, 1, 2), current (3, 4)
    noise = torch.randn_like(x0)
    win = training_window(x0, ref, seg, torch.tensor([0.3]), noise, rope="absolute")
    nc = len(seg.context)
    assert seg.context == (0, 1, 2) and seg.current == (3, 4)
    assert torch.equal(win.sigma, torch.tensor([[0.0, 0.0, 0.0, 0.3, 0.3]]))
    assert torch.equal(win.x[:, :, :nc], x0[:, :, [0, 1, 2]])          # ground truth context
    assert torch.allclose(win.x[:, :, nc:], 0.7 * x0[:, :, [3, 4]] + 0.3 * noise[:, :, [3, 4]])
    assert torch.equal(win.reference, ref[:, :, [0, 1, 2, 3, 4]])
    assert torch.equal(win.positions, torch.tensor([0, 1, 2, 3, 4]))
    # the velocity target turns the noisy segment back into x0
    seg_sigma = win.sigma[:, nc:]
    assert torch.allclose(flow_denoised(win.x[:, :, nc:], win.target[:, :, nc:], seg_sigma),
                          x0[:, :, [3, 4]], atol=1e-6)
    assert torch.equal(training_window(x0, ref, plan_segments(7, 2, 1)[2], torch.tensor([0.5]),
                                       noise, rope="window").positions, torch.arange(4))


def test_loss_mask_covers_exactly_the_segment():
    x0, ref = latents()
    seg = plan_segments(7, 3, 2)[1]                   # context (0, 2, 3), current (4, 5, 6)
    win = training_window(x0, ref, seg, torch.tensor([0.6]), torch.randn_like(x0))
    v = torch.randn(win.x.shape, requires_grad=True)
    masked_velocity_loss(v, win).backward()
    nc = len(seg.context)
    assert torch.count_nonzero(v.grad[:, :, :nc]) == 0               # context: no gradient
    assert torch.count_nonzero(v.grad[:, :, nc:]) == v.grad[:, :, nc:].numel()
    # equal to the plain MSE over the segment's blocks
    want = ((v[:, :, nc:] - win.target[:, :, nc:]) ** 2).mean()
    assert torch.allclose(masked_velocity_loss(v, win), want)


def test_draws_cover_the_four_pairs_and_every_segment():
    pairs, segs = set(), set()
    for i in range(2000):
        g = torch.Generator().manual_seed(i)
        m, n = draw_pair(g)
        pairs.add((m, n))
        segs.add((m, n, draw_segment(21, m, n, g).index))
    assert pairs == set(PAIRS)
    assert segs == {(m, n, k) for m, n in PAIRS for k in range(len(plan_segments(21, m, n)))}


def test_training_loss_sees_the_window_and_is_reproducible():
    x0, ref = latents()
    seen = []

    def velocity(x, sigma, *, reference, positions, context):
        seen.append((x.shape[2], sigma.clone(), positions.clone()))
        return torch.zeros_like(x)

    a, win = csg_training_loss(velocity, x0, ref, torch.zeros(1, 4, 8),
                               torch.Generator().manual_seed(3))
    b, _ = csg_training_loss(velocity, x0, ref, torch.zeros(1, 4, 8),
                             torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and seen[0][0] == len(win.segment.window)
    assert torch.count_nonzero(seen[0][1][:, :len(win.segment.context)]) == 0


def test_bell_weighting_is_diffsynth_studios_and_keeps_the_loss_scale():
    from swift_core.schedule import bell_weight, shifted_sigma
    # DiffSynth-Studio: over its 1000 training timesteps t (shifted sigma x 1000), the weight is
    # exp(-2 ((t - 500) / 1000)^2) minus its minimum, scaled to sum to 1000
    t = shifted_sigma(torch.linspace(1.0, 0.0, 1001)[:-1].double(), 5.0) * 1000
    y = torch.exp(-2 * ((t - 500) / 1000) ** 2)
    want = (y - y.min()) * (1000 / (y - y.min()).sum())
    got = bell_weight(t / 1000, 5.0)
    assert torch.allclose(got, want, rtol=2e-3, atol=2e-3)
    assert float(bell_weight(torch.tensor([0.5]))) > 1 > float(bell_weight(torch.tensor([0.95])))
    x0, ref = latents()

    def velocity(x, sigma, *, reference, positions, context):
        return torch.zeros_like(x)

    plain, win = csg_training_loss(velocity, x0, ref, torch.zeros(1, 4, 8),
                                   torch.Generator().manual_seed(5))
    weighted, _ = csg_training_loss(velocity, x0, ref, torch.zeros(1, 4, 8),
                                    torch.Generator().manual_seed(5), weighting="bell")
    sigma = win.sigma[0, -1]
    assert torch.allclose(weighted, plain * bell_weight(sigma[None])[0], rtol=1e-5)
    with pytest.raises(ValueError, match="weighting='linear'"):
        csg_training_loss(velocity, x0, ref, torch.zeros(1, 4, 8),
                          torch.Generator().manual_seed(5), weighting="linear")


def test_widened_model_equals_the_base_whatever_the_reference():
    base = load_wan("tiny", seed=4).eval()
    wide = widen_patch_embedding(copy.deepcopy(base)).eval()
    assert wide.config.in_channels == 96 and wide.patch_embedding.weight.shape[1] == 96
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 48, 3, 4, 4, generator=g)
    t = torch.full((1, 3 * 4), 500.0)
    ctx = torch.randn(1, 8, 4096, generator=g)
    with torch.no_grad():
        want = base(x, t, ctx, return_dict=False)[0]
        for scale in (1.0, 10.0):
            ref = torch.randn(1, 48, 3, 4, 4, generator=g) * scale
            got = wide(torch.cat([x, ref], 1), t, ctx, return_dict=False)[0]
            assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
        # and the new channels do reach the output once they are trained
        wide.patch_embedding.weight.data[:, 48:] = torch.randn(
            wide.patch_embedding.weight[:, 48:].shape, generator=g) * 0.1
        assert not torch.allclose(wide(torch.cat([x, ref], 1), t, ctx, return_dict=False)[0],
                                  want, atol=1e-3)


def test_export_then_reimport_gives_identical_tensors(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file
    model = widen_patch_embedding(load_wan("tiny", seed=5))
    sd = model.state_dict()
    path = write(sd, str(tmp_path / "m.safetensors"), dtype="fp32", rope="absolute")
    comfy = load_file(path)
    assert "head.modulation" in comfy and "blocks.0.self_attn.q.weight" in comfy
    assert "blocks.0.norm3.weight" in comfy and "blocks.0.modulation" in comfy
    assert comfy["patch_embedding.weight"].shape[1] == 96
    back = comfy_to_diffusers(dict(comfy))              # diffusers' own single-file converter
    assert set(back) == set(sd)
    for k in sd:
        assert torch.equal(back[k], sd[k]), k
    with safe_open(path, "pt") as f:
        assert f.metadata()["swifti2v.rope"] == "absolute"
        assert f.metadata()["swifti2v.mode"] == "swifti2v"
    # the file loads back as a model (ComfyUI layout detected)
    again = load_wan(path)
    assert torch.equal(again.state_dict()["patch_embedding.weight"], sd["patch_embedding.weight"])
    assert len(to_comfy(sd)) == len(sd)
    # RoPE's tables (not in the file) are real, and those of a model built in memory
    assert not any(b.is_meta for b in again.buffers())
    assert torch.equal(again.rope.freqs_cos, model.rope.freqs_cos)


def test_base_from_a_diffusers_folder(tmp_path):
    model = load_wan("tiny", seed=6)
    model.save_pretrained(tmp_path / "Wan2.2-TI2V-5B-Diffusers" / "transformer")
    again = load_wan(str(tmp_path / "Wan2.2-TI2V-5B-Diffusers"))
    for k, v in model.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    with pytest.raises(FileNotFoundError, match="--base 'nope': no such file or folder"):
        load_wan("nope")


def test_weighted_data_folders_are_drawn_in_their_ratio_and_resume_exactly():
    from swift_train.data import WeightedOrder, data_source
    assert data_source("runs/2k:0.7") == ("runs/2k", 0.7)
    assert data_source("runs/2k") == ("runs/2k", 1.0)
    assert data_source("C:\\\\data") == ("C:\\\\data", 1.0)
    with pytest.raises(ValueError, match="weight must be above 0"):
        data_source("a:0")
    order = WeightedOrder([10, 5], [0.7, 0.3], world=2, rank=1, seed=3)
    picks = [order(i) for i in range(6000)]
    share = sum(p < 10 for p in picks) / len(picks)
    assert 0.68 < share < 0.72, share                      # 0.7 of the draws from folder A
    assert set(picks) <= set(range(15))
    firsts = [p for p in picks if p >= 10][:3]             # B's 5 over 2 ranks: 3 an epoch
    assert len(set(firsts)) == 3                           # its own shuffled order, no repeat
    again = WeightedOrder([10, 5], [0.7, 0.3], world=2, rank=1, seed=3)
    assert [again(i) for i in range(4000, 4100)] == picks[4000:4100]      # resumed mid-run
    other_rank = WeightedOrder([10, 5], [0.7, 0.3], world=2, rank=0, seed=3)
    assert [other_rank(i) for i in range(100)] != picks[:100]     # its own share of each folder


def test_one_folder_per_global_step_on_every_rank():
    """Folders of other latent sizes mixed: every micro-step of a global step, on every rank,
    takes the same folder (the same size), and the steps still follow the weights."""
    from swift_train.data import WeightedOrder

    def folders(rank, accum, steps=3000):
        order = WeightedOrder([10, 5], [0.7, 0.3], world=4, rank=rank, seed=3, grad_accum=accum)
        return [order.folder(i)[0] for i in range(steps * accum)]

    for accum in (1, 3):
        ranks = [folders(r, accum) for r in range(4)]
        assert all(r == ranks[0] for r in ranks), accum
        steps = [ranks[0][i:i + accum] for i in range(0, len(ranks[0]), accum)]
        assert all(len(set(s)) == 1 for s in steps), accum
        share = sum(s[0] == 0 for s in steps) / len(steps)
        assert 0.67 < share < 0.73, share


def test_held_out_by_whole_videos_from_every_folder():
    """--val-count holds out whole videos (a video's clips never on both sides, in any folder),
    drawn from each folder in turn, not the last files of the last folder."""
    from swift_train.data import split
    source = lambda f: f.split("/")[1].rsplit("_", 1)[0]            # noqa: E731
    a = [f"a/v{k}_{c}" for k in range(5) for c in range(3)]          # 5 videos, 3 clips each
    b = [f"b/w{k}_{c}" for k in range(4) for c in range(2)] + ["b/v1_9"]   # v1 in both folders
    train, val = split([a, b], 4, source=source)
    assert sorted(train + val) == sorted(a + b) and not set(train) & set(val)
    held = {source(f) for f in val}
    assert not held & {source(f) for f in train}                    # no video on both sides
    assert {f[0] for f in val} == {"a", "b"} and len(val) >= 4      # from both folders
    assert train == [f for f in a + b if f in train]                 # folder order kept
    assert split([a, b], 4, source=source) == (train, val)           # the same every run
    assert split([a, b], 0, source=source) == (a + b, [])
    with pytest.raises(ValueError, match="--val-count 99: .* 9 video"):
        split([a, b], 99, source=source)
    with pytest.raises(ValueError, match="--val-count -1"):
        split([a, b], -1, source=source)


def test_the_reader_loads_only_the_window_and_it_trains_as_the_whole_clip(tmp_path):
    """The window's blocks read by slices (bytes counted) equal those of the whole sample, and
    the loss on them equals the loss computed on the whole clip with the same draws."""
    from swift_core.samples import read_sample
    from swift_core.training import draw_segment
    from swift_testing.train_data import make_dataset
    from swift_train.data import read_window
    (path,) = make_dataset(tmp_path, count=1)
    full = read_sample(str(path))
    seg = draw_segment(5, 2, 1, torch.Generator().manual_seed(0))
    got = read_window(str(path), seg)
    win = list(seg.window)
    assert got["bytes"] == 2 * len(win) * 48 * 4 * 4 * 4 and len(win) < 5
    assert torch.equal(got["x0"], full.x0[:, win].float())
    assert torch.equal(got["reference"], full.reference[:, win].float())

    def velocity(x, sigma, *, reference, positions, context):
        return x * 0.5 + reference * 0.25 + positions.view(1, 1, -1, 1, 1) * 0.01

    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    cut, wc = csg_training_loss(velocity, got["x0"][None], got["reference"][None],
                                full.context[None], g1, segment=seg, rope="absolute")
    whole = training_window(full.x0[None].float(), full.reference[None].float(), seg,
                            wc.sigma[:, -1], torch.zeros(1, 48, 5, 4, 4), "absolute")
    assert torch.equal(wc.positions, whole.positions) and torch.equal(wc.mask, whole.mask)
    assert torch.equal(wc.reference, whole.reference)
    assert torch.equal(wc.x[:, :, :len(seg.context)], whole.x[:, :, :len(seg.context)])
    assert torch.isfinite(cut)


def test_learning_rate_is_constant_then_decays_linearly_to_zero_over_decay_steps():
    from types import SimpleNamespace
    from swift_train.loop import check_loop_args, lr_at
    args = SimpleNamespace(lr=1e-3, steps=10, decay_steps=4)
    lrs = [lr_at(s, args) for s in range(10)]
    assert lrs[:7] == [1e-3] * 7                                # stable until the last 4 steps
    assert lrs[6:] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
    assert [lr_at(s, SimpleNamespace(lr=1e-3, steps=10, decay_steps=0)) for s in range(10)] \
        == [1e-3] * 10                                          # the default: constant
    bad = SimpleNamespace(steps=10, save_every=1, keep_last=3, val_every=0, val_count=0,
                          keep_every=0, decay_steps=-1, grad_accum=1, replicas=1, lr=1e-3,
                          clip_grad=1.0)
    with pytest.raises(ValueError, match="--decay-steps -1: must be >= 0"):
        check_loop_args(bad)
