import pytest
import torch

from swift_core import CSGProgress, plan_segments, sample_csg, sample_steps

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


def test_callback_progress_and_finished_segments():
    target, noise, reference, anchor = latents(2)
    events = []
    sigmas = torch.tensor([1.0, 0.5, 0.0])
    out = sample_csg(lambda x, s, **_: x * 0.5, noise, sigmas, anchor=anchor, reference=reference,
                     m=3, n=1, callback=events.append)
    steps = [e for e in events if not e.finished]
    done = [e for e in events if e.finished]
    assert [e.done for e in steps] == list(range(1, 3 * 2 + 1))
    assert all(isinstance(e, CSGProgress) and e.num_segments == 3 for e in events)
    assert [e.blocks for e in done] == [(1, 2, 3), (4, 5, 6), (7, 8)]
    for e in done:
        assert torch.equal(e.latent, out[:, :, list(e.blocks)])


def test_cancel_from_callback_stops_within_a_step():
    target, noise, reference, anchor = latents()
    calls = []

    def cb(p):
        if p.done == 2:
            raise InterruptedError("cancelled")

    with pytest.raises(InterruptedError):
        sample_csg(lambda x, s, **_: calls.append(1) or x, noise, torch.linspace(1, 0, 5),
                   anchor=anchor, reference=reference, callback=cb)
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
    (dict(m=0), "m=0"), (dict(n=-1), "n=-1"), (dict(rope="x"), "rope='x'"),
])
def test_errors(kw, msg):
    target, noise, reference, anchor = latents()
    args = dict(anchor=anchor, reference=reference) | kw
    with pytest.raises(ValueError, match=msg):
        sample_csg(lambda x, s, **_: x, noise, torch.tensor([1.0, 0.0]), **args)
