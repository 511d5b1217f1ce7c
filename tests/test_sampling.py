import pytest
import torch

from swift_core.rules import SwiftInputError
from swift_core import (guider_window_sampler, plan_segments, run_csg, sample_csg, sample_euler,
                        sample_steps, torch_window_sampler, window_latent, window_mask)
from swift_core.sampling import flow_noised

B, C, T, H, W = 1, 4, 9, 6, 8


def latents(seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(B, C, T, H, W, generator=g)
    noise = torch.randn(B, C, T, H, W, generator=g)
    reference = torch.randn(B, C, T, H, W, generator=g)
    anchor = torch.randn(B, C, 1, H, W, generator=g)
    return target, noise, reference, anchor


def oracle(target, anchor, plan, steps, rope, seen):
    """Knows the clean target; returns garbage for the context blocks; checks what it is given."""
    calls = [0]

    def denoise(x, sigma, *, reference, positions):
        seg = plan[calls[0] // steps]
        calls[0] += 1
        win, nc = list(seg.window), len(seg.context)
        expect_pos = win if rope == "absolute" else list(range(len(win)))
        assert positions.tolist() == expect_pos
        assert x.shape[2] == len(win) and sigma.shape == (B, len(win))
        assert torch.all(sigma[:, :nc] == 0) and torch.all(sigma[:, nc:] > 0)
        # the context blocks it sees are final: the anchor, then finished blocks of the target
        final = torch.cat([anchor, target[:, :, 1:]], dim=2)
        assert torch.equal(x[:, :, :nc], final[:, :, list(seg.context)])
        seen.append((seg.index, reference))
        out = target[:, :, win].clone()
        out[:, :, :nc] = 1e6 + torch.randn_like(out[:, :, :nc])
        return out

    return denoise


@pytest.mark.parametrize("mode", ["swifti2v", "refine"])
@pytest.mark.parametrize("rope", ["window", "absolute"])
@pytest.mark.parametrize("m,n", [(3, 1), (2, 2), (1, 0), (8, 1), (20, 3)])
def test_oracle_lands_exactly(mode, rope, m, n):
    target, noise, reference, anchor = latents()
    sigmas = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]) if mode == "swifti2v" else \
        torch.tensor([0.6, 0.3, 0.0])
    plan = plan_segments(T, m, n)
    seen = []
    out = sample_csg(oracle(target, anchor, plan, len(sigmas) - 1, rope, seen), noise, sigmas,
                     anchor=anchor, reference=reference, m=m, n=n, mode=mode, rope=rope)
    assert torch.equal(out[:, :, :1], anchor)
    assert torch.equal(out[:, :, 1:], target[:, :, 1:])
    for k, ref in seen:
        if mode == "swifti2v":
            assert torch.equal(ref, reference[:, :, list(plan[k].window)])
        else:
            assert ref is None


def test_start_points_and_noise_slices_independent_of_m_n():
    target, noise, reference, anchor = latents(1)
    sig = torch.tensor([0.7, 0.0])
    for mode in ("swifti2v", "refine"):
        starts = {}
        for m, n in [(3, 1), (2, 0), (5, 2)]:
            plan = plan_segments(T, m, n)
            calls = [0]

            def denoise(x, sigma, *, reference, positions, plan=plan, calls=calls, m=m):
                seg = plan[calls[0]]
                calls[0] += 1
                for j, b in enumerate(seg.current):
                    starts.setdefault((mode, b), []).append(x[:, :, len(seg.context) + j].clone())
                return x

            sample_csg(denoise, noise, sig, anchor=anchor, reference=reference, m=m, n=n,
                       mode=mode)
        for b in range(1, T):
            first = starts[(mode, b)][0]
            want = 0.7 * noise[:, :, b] + (0.3 * reference[:, :, b] if mode == "refine" else 0)
            assert torch.allclose(first, want, atol=1e-6)
            assert all(torch.equal(first, s) for s in starts[(mode, b)])


def test_progress_events_and_finished_segments():
    target, noise, reference, anchor = latents(2)
    steps, done = [], []
    sigmas = torch.tensor([1.0, 0.5, 0.0])
    out = sample_csg(lambda x, s, **_: x * 0.5, noise, sigmas, anchor=anchor, reference=reference,
                     m=3, n=1, on_step=lambda seg, i, d: steps.append((seg.index, i, d.shape[2])),
                     on_segment=lambda seg, blocks: done.append((seg.current, blocks.clone())))
    assert steps == [(k, i, len(seg.current)) for k, seg in enumerate(plan_segments(T, 3, 1))
                     for i in (1, 2)]
    assert [b for b, _ in done] == [(1, 2, 3), (4, 5, 6), (7, 8)]
    for blocks, latent in done:
        assert torch.equal(latent, out[:, :, list(blocks)])


def test_cancel_from_on_step_stops_within_a_step():
    target, noise, reference, anchor = latents()
    calls = []

    def on_step(seg, step, denoised):
        if seg.index * 4 + step == 2:
            raise InterruptedError("cancelled")

    with pytest.raises(InterruptedError):
        sample_csg(lambda x, s, **_: calls.append(1) or x, noise, torch.linspace(1, 0, 5),
                   anchor=anchor, reference=reference, on_step=on_step)
    assert len(calls) == 2


def test_custom_step_function():
    target, noise, reference, anchor = latents()
    seen = []

    def step(x, denoised, s, s_next):
        seen.append((s, s_next))
        return denoised

    sample_csg(lambda x, s, **_: x, noise, torch.tensor([1.0, 0.4, 0.0]), anchor=anchor,
               reference=reference, m=8, sampler=sample_steps(step))
    assert seen == [(1.0, pytest.approx(0.4)), (pytest.approx(0.4), 0.0)]


@pytest.mark.parametrize("kw,msg", [
    (dict(mode="other"), "mode='other'"),
    (dict(anchor=torch.zeros(B, C, 2, H, W)), "anchor: expected shape"),
    (dict(reference=torch.zeros(B, C, T - 1, H, W)), "reference: expected the latent's shape"),
    (dict(sigmas=torch.tensor([1.0])), "sigmas: expected a 1-D schedule"),
    (dict(m=0), "m=0"), (dict(n=-1), "n=-1"), (dict(rope="x"), "rope='x'"),
])
def test_errors(kw, msg):
    target, noise, reference, anchor = latents()
    args = dict(anchor=anchor, reference=reference, sigmas=torch.tensor([1.0, 0.0])) | kw
    with pytest.raises(SwiftInputError, match=msg):
        sample_csg(lambda x, s, **_: x, noise, **args)


class RecordingGuider:
    """Stands in for core's ``CFGGuider.sample`` on a flow model, as the node calls it: ComfyUI's
    noise scaling of the whole window, the denoise mask applied around every model call (context
    kept at its clean value with timestep 0), the sampler over the whole window; records calls."""

    def __init__(self, denoise, reference, positions, calls):
        self.denoise, self.reference, self.positions, self.calls = (denoise, reference, positions,
                                                                    calls)

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
               disable_pbar=False, seed=None):
        self.calls.append({"noise": noise, "latent": latent_image.clone(), "mask": denoise_mask,
                           "seed": seed, "positions": self.positions,
                           "reference": self.reference, "pbar": disable_pbar})
        mask, keep = denoise_mask, 1 - denoise_mask

        def model(x, sigma):
            x = x * mask + latent_image * keep
            out = self.denoise(x, sigma[:, None] * mask[:, 0, :, 0, 0], reference=self.reference,
                               positions=self.positions)
            return out * mask + latent_image * keep

        x = flow_noised(noise, latent_image, float(sigmas[0]))
        return sampler(model, x, sigmas, callback=lambda i: callback(
            i["i"], i["denoised"], i["x"], len(sigmas) - 1))


def nonlinear_denoiser(x, sigma, *, reference, positions):
    """Depends on every input, so a wrong window, sigma, reference or position changes it."""
    out = torch.tanh(x * 0.7 + positions.float()[None, None, :, None, None] * 0.01)
    out = out - sigma[:, None, :, None, None] * 0.3
    return out if reference is None else out + 0.1 * reference


@pytest.mark.parametrize("mode", ["swifti2v", "refine"])
@pytest.mark.parametrize("rope", ["window", "absolute"])
@pytest.mark.parametrize("m,n", [(3, 1), (2, 2), (1, 0), (8, 1)])
def test_one_loop_torch_and_guider_window_samplers_agree_bit_for_bit(mode, rope, m, n):
    """The node's window sampler (one guider call per window) and the plain-torch one, driven by
    the same loop, give the same latent bit for bit and the same progress events."""
    _, noise, reference, anchor = latents(3)
    sigmas = torch.tensor([1.0, 0.6, 0.3, 0.0]) if mode == "swifti2v" else torch.tensor(
        [0.6, 0.3, 0.0])
    plan = plan_segments(T, m, n)
    runs = {}
    for kind in ("torch", "guider"):
        calls, events, finished = [], [], []
        if kind == "torch":
            sample_window = torch_window_sampler(nonlinear_denoiser, sigmas, sample_euler)
        else:
            sample_window = guider_window_sampler(
                lambda ref, pos: RecordingGuider(nonlinear_denoiser, ref, pos, calls), sample_euler,
                sigmas, seed=40)
        out, ran = run_csg(anchor, reference, noise, sigmas, plan, sample_window, mode=mode, rope=rope,
                      on_step=lambda seg, i, d: events.append((seg.index, i, d.clone())),
                      on_segment=lambda seg, b: finished.append((seg.index, b.clone())))
        assert ran == plan                              # no error: the plan given is the plan run
        runs[kind] = out, events, finished, calls
    (a, ev_a, fin_a, _), (b, ev_b, fin_b, calls) = runs["torch"], runs["guider"]
    assert torch.equal(a, b)
    assert torch.equal(a[:, :, :1], anchor)                 # block 0 never written
    assert [e[:2] for e in ev_a] == [e[:2] for e in ev_b] == [
        (k, i) for k in range(len(plan)) for i in range(1, len(sigmas))]
    assert all(torch.equal(x[2], y[2]) for x, y in zip(ev_a, ev_b))
    assert [k for k, _ in fin_a] == [k for k, _ in fin_b] == list(range(len(plan)))
    assert all(torch.equal(x[1], y[1]) for x, y in zip(fin_a, fin_b))
    # what the guider was given: the window's noise slice, its own seed, the mask, the positions
    for seg, call in zip(plan, calls):
        win, nc = list(seg.window), len(seg.context)
        assert torch.equal(call["noise"], noise[:, :, win])
        assert call["seed"] == 40 + seg.index and call["pbar"] is True
        assert call["mask"][0, 0, :, 0, 0].tolist() == [0.0] * nc + [1.0] * len(seg.current)
        assert torch.equal(call["latent"][:, :, :nc], a[:, :, list(seg.context)])
        want_pos = win if rope == "absolute" else list(range(len(win)))
        assert call["positions"].tolist() == want_pos
        if mode == "swifti2v":
            assert torch.equal(call["reference"], reference[:, :, win])
        else:
            assert call["reference"] is None


def test_block_zero_is_never_written_even_if_the_sampler_returns_garbage():
    _, noise, reference, anchor = latents(4)
    kept = anchor.clone()

    def garbage(x, noise, seg, *, mask, reference, positions, on_step):
        return torch.full_like(x, float("nan"))

    out, _ = run_csg(anchor, reference, noise, torch.tensor([1.0, 0.0]), plan_segments(T, 2, 2),
                     garbage, mode="swifti2v", rope="window")
    assert torch.equal(out[:, :, :1], anchor)
    assert torch.isnan(out[:, :, 1:]).all()
    assert torch.equal(anchor, kept)                                    # input kept


@pytest.mark.parametrize("mode", ["swifti2v", "refine"])
def test_window_latent_and_mask(mode):
    _, _, reference, anchor = latents(5)
    latent = torch.randn(B, C, T, H, W)
    seg = plan_segments(T, 3, 2)[1]                     # context (0, 2, 3), current (4, 5, 6)
    assert seg.context == (0, 2, 3) and seg.current == (4, 5, 6)
    x = window_latent(latent, reference, seg, mode)
    assert x.shape == (B, C, 6, H, W)
    assert torch.equal(x[:, :, :3], latent[:, :, [0, 2, 3]])
    want = reference[:, :, [4, 5, 6]] if mode == "refine" else torch.zeros(B, C, 3, H, W)
    assert torch.equal(x[:, :, 3:], want)
    x[:] = 7                                             # a copy, not a view of the latent
    assert not torch.equal(latent[:, :, [0, 2, 3]], x[:, :, :3])
    mask = window_mask(seg, x)
    assert mask.shape == (B, 1, 6, H, W)
    assert mask[0, 0, :, 0, 0].tolist() == [0, 0, 0, 1, 1, 1] and torch.all(mask[:, :, 3:] == 1)


class FakeOOM(RuntimeError):
    pass


def test_window_that_does_not_fit_is_retried_with_a_smaller_plan():
    """A window sampler that fails above 3 blocks: the run finishes with M lowered for the rest,
    and equals a run given that combined plan from the start."""
    from swift_core import replan_from
    target, noise, reference, anchor = latents(3)
    sigmas = torch.tensor([1.0, 0.5, 0.0])
    denoise = lambda x, s, **_: x * 0.5 + 0.1 * x.shape[2]          # depends on the window
    plain = torch_window_sampler(denoise, sigmas)
    sizes, replans = [], []

    def failing(x, noise, seg, **kw):
        sizes.append(len(seg.window))
        if len(seg.window) > 3:
            raise FakeOOM("out of memory")
        return plain(x, noise, seg, **kw)

    def on_error(error, plan, k):
        if not isinstance(error, FakeOOM) or len(plan[k].current) == 1:
            return None
        replans.append(k)
        return replan_from(plan, k, len(plan[k].current) - 1, 1)

    plan = plan_segments(T, 3, 1)
    done = []
    out, ran = run_csg(anchor, reference, noise, sigmas, plan, failing, mode="swifti2v",
                       rope="window", on_error=on_error,
                       on_segment=lambda seg, b: done.extend(seg.current))
    assert replans == [0, 1]       # 3 -> 2 (segment 0 has no neighbour: 3 blocks), then 2 -> 1
    assert done == list(range(1, T))                 # every block, once, in order
    final = replan_from(replan_from(plan, 0, 2, 1), 1, 1, 1)
    assert ran == final                              # the plan that ran comes back
    expect, _ = run_csg(anchor, reference, noise, sigmas, final, plain, mode="swifti2v",
                        rope="window")
    assert torch.equal(out, expect)
    with pytest.raises(FakeOOM):                     # no on_error: the error goes through
        run_csg(anchor, reference, noise, sigmas, plan, failing, mode="swifti2v", rope="window")
    with pytest.raises(FakeOOM):                     # on_error declines at m=1
        run_csg(anchor, reference, noise, sigmas, plan_segments(T, 1, 2), failing,
                mode="swifti2v", rope="window", on_error=on_error)
