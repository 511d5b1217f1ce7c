import pytest
import torch
import torch.nn.functional as F

from swift_core import hybrid_chunks, hybrid_reference, iter_hybrid_reference, resize_frames


def frames(n, h, w, seed=0):
    return torch.rand(n, h, w, 3, generator=torch.Generator().manual_seed(seed))


def test_frame0_is_the_image_and_rest_are_upsampled():
    low, img = frames(9, 12, 20), frames(1, 48, 80, 1)
    ref = hybrid_reference(low, img, 80, 48)
    assert ref.shape == (9, 48, 80, 3)
    assert torch.equal(ref[0], img[0])
    want = F.interpolate(low[1:].movedim(-1, 1), size=(48, 80), mode="bicubic",
                         antialias=True).clamp(0, 1).movedim(1, -1)
    assert torch.allclose(ref[1:], want, atol=1e-6)


def test_image_of_other_size_is_resized_exactly():
    ref = hybrid_reference(frames(5, 12, 20), frames(1, 50, 77, 1), 80, 48, method="bilinear")
    assert ref.shape == (5, 48, 80, 3)


def test_chunks_cover_blocks_and_bound_memory():
    assert hybrid_chunks(81, 2) == [(0, 5)] + [(5 + 8 * i, 13 + 8 * i) for i in range(9)] + [(77, 81)]
    low, img = frames(17, 8, 8), frames(1, 32, 32, 1)
    chunks = list(iter_hybrid_reference(low, img, 32, 32, blocks_per_chunk=1))
    assert [c.shape[0] for c in chunks] == [1, 4, 4, 4, 4]
    assert torch.equal(torch.cat(chunks), hybrid_reference(low, img, 32, 32, blocks_per_chunk=3))


def test_errors():
    with pytest.raises(ValueError, match="low_res frame count=8"):
        hybrid_reference(frames(8, 8, 8), frames(1, 32, 32), 32, 32)
    with pytest.raises(ValueError, match=r"image: expected an IMAGE batch \[N>=1"):
        hybrid_reference(frames(5, 8, 8), torch.zeros(0, 32, 32, 3), 32, 32)
    with pytest.raises(ValueError, match="method='lanczos'"):
        resize_frames(frames(1, 8, 8), 16, 16, method="lanczos")
