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


def test_center_crop_keeps_the_aspect_ratio():
    wide = torch.zeros(1, 40, 120, 3)
    wide[:, :, 40:80] = 1.0                         # a white square in the middle third
    out = resize_frames(wide, 40, 40, method="nearest-exact", crop="center")
    assert torch.equal(out, torch.ones(1, 40, 40, 3))          # only the centre survives
    stretched = resize_frames(wide, 40, 40, method="nearest-exact")
    assert stretched.mean() < 0.5                              # disabled: squeezed, not cropped
    tall = torch.rand(2, 90, 30, 3)
    assert resize_frames(tall, 32, 64, crop="center").shape == (2, 64, 32, 3)
    with pytest.raises(ValueError, match="crop='middle'"):
        resize_frames(tall, 32, 64, crop="middle")


def test_hybrid_reference_crops_frame0_like_stage1():
    img = frames(1, 60, 160, 3)
    ref = hybrid_reference(frames(5, 8, 16), img, 64, 32, crop="center")
    want = resize_frames(img[:, :, 20:140], 64, 32)
    assert torch.allclose(ref[0], want[0])
