"""The Stage I Stand-in's degradation model (swift_core.degrade): what it does to a clip, drawn
per clip the same on every run."""
import pytest
import torch

from swift_core.degrade import binomial_blur, degrade_clip, stage1_like
from swift_core.rules import SwiftInputError


def clip(frames=9, size=32):
    g = torch.Generator().manual_seed(0)
    return torch.rand(frames, size, size, 3, generator=g)


def test_each_defect_alone_does_what_it_says():
    x = clip()
    g = lambda: torch.Generator().manual_seed(5)                       # noqa: E731
    assert torch.equal(stage1_like(x, g(), blur=0, noise=0, flicker=0), x)
    blurred = stage1_like(x, g(), blur=2, noise=0, flicker=0)
    detail = lambda v: float((v[:, 1:] - v[:, :-1]).abs().mean())     # noqa: E731
    assert detail(blurred) < 0.5 * detail(x)                          # lost detail
    assert torch.allclose(blurred.mean(), x.mean(), atol=0.01)         # the filter keeps the mean
    flat = torch.full((9, 32, 32, 3), 0.5)
    noisy = stage1_like(flat, g(), blur=0, noise=0.1, flicker=0)
    assert 0.09 < float((noisy - flat).std()) < 0.11
    gains = stage1_like(flat, g(), blur=0, noise=0, flicker=0.2).mean(dim=(1, 2, 3)) / 0.5
    assert gains.std() > 0.05 and torch.allclose(gains, gains[:, None, None, None].mean(dim=(1, 2, 3)))
    # one pass: the separable [1 2 1]/4 filter in each direction
    impulse = torch.zeros(1, 1, 5, 5)
    impulse[0, 0, 2, 2] = 1
    k = torch.tensor([1.0, 2.0, 1.0]) / 4
    assert torch.allclose(binomial_blur(impulse, 1)[0, 0, 1:4, 1:4], k[:, None] * k[None])


def test_a_clip_degrades_the_same_way_every_run_and_clips_differ():
    x = clip()
    a = degrade_clip(x, 42, "walk", 0)
    assert torch.equal(a, degrade_clip(x, 42, "walk", 0))
    assert not torch.equal(a, degrade_clip(x, 42, "walk", 8))
    assert not torch.equal(a, degrade_clip(x, 43, "walk", 0))
    assert a.min() >= 0 and a.max() <= 1 and a.shape == x.shape


@pytest.mark.parametrize("kw,needle", [({"blur": -1}, "blur=-1"), ({"noise": 1.5}, "noise=1.5"),
                                       ({"flicker": -0.1}, "flicker=-0.1")])
def test_bad_parameters_are_named(kw, needle):
    with pytest.raises(SwiftInputError, match=needle):
        stage1_like(clip(), torch.Generator(), **kw)
