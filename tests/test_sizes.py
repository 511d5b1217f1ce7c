import pytest

from swift_core import VideoSize, block_frame_range, check_frames, latent_blocks, size_from_image


def test_paper_defaults():
    s = VideoSize()
    assert (s.width, s.height, s.frames, s.blocks) == (2560, 1408, 81, 21)
    assert s.stage1 == (640, 352)
    assert s.latent_shape() == (48, 21, 88, 160)


@pytest.mark.parametrize("frames,blocks", [(1, 1), (5, 2), (17, 5), (81, 21), (161, 41)])
def test_latent_blocks(frames, blocks):
    assert latent_blocks(frames) == blocks


def test_frames_error_names_value_and_suggests():
    with pytest.raises(ValueError, match=r"frames=80: must be 4k\+1.*e\.g\. 77 or 81"):
        check_frames(80)
    with pytest.raises(ValueError, match="frames=0"):
        check_frames(0)


@pytest.mark.parametrize("w,h,bad", [(2500, 1408, "width=2500"), (2560, 1400, "height=1400"),
                                     (0, 1408, "width=0"), (-32, 1408, "width=-32")])
def test_size_errors(w, h, bad):
    with pytest.raises(ValueError, match=f"{bad}: must be a positive multiple of 32"):
        VideoSize(w, h, 81)


def test_stage1_other_aspect_ratios_snap_to_16():
    w, h = VideoSize(1920, 1088, 81).stage1
    assert (w % 16, h % 16) == (0, 0) and abs(w - 480) <= 8 and abs(h - 272) <= 8
    assert VideoSize(1024, 1024, 17).stage1 == (256, 256)


def test_size_from_image_snaps_down():
    s = size_from_image(2600, 1450)
    assert (s.width, s.height) == (2592, 1440)
    assert size_from_image(100, 100, width=64, height=96, frames=9).blocks == 3


def test_block_frames_cover_video_once():
    frames = [f for b in range(21) for f in range(*block_frame_range(b))]
    assert frames == list(range(81))
