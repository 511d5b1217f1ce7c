import pytest

from swift_core import VideoSize, block_frame_range, check_frames, latent_blocks, size_from_image
from swift_core.memory import check_fits, frames_bytes
from swift_core.rules import check_prefix
from swift_core.rules import check_bounds


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


@pytest.mark.parametrize("value,lo,hi,ok", [(5, 5, 1025, True), (1, 5, 1025, False),
                                            (8224, 0, 8192, False), (0.0, 0.0, 1.0, True),
                                            (1.5, 0.0, 1.0, False), ("7", 0, 9, False)])
def test_widget_bounds(value, lo, hi, ok):
    if ok:
        assert check_bounds(value, "length", lo, hi) == value
    else:
        with pytest.raises(ValueError, match=r"^length="):
            check_bounds(value, "length", lo, hi)


def test_size_from_a_too_small_image_is_refused_naming_the_image():
    with pytest.raises(ValueError, match=r"image: 20x12 px is too small for width=0"):
        size_from_image(20, 12, 0, 0, 17)
    with pytest.raises(ValueError, match=r"image: 640x12 px is too small for height=0"):
        size_from_image(640, 12, 0, 0, 17)
    assert size_from_image(20, 12, 64, 64, 17).width == 64      # explicit size: any image
    with pytest.raises(ValueError, match=r"^length=8: must be 4k\+1"):
        size_from_image(640, 480, 0, 0, 8, "length")


@pytest.mark.parametrize("prefix,ok", [("SwiftI2V/video", True), ("a/../b", True),
                                       ("../x", False), ("a/../../x", False), ("/etc/x", False),
                                       ("C:/x", False), ("..\\x", False), ("", False)])
def test_output_prefix_stays_inside_the_output_folder(prefix, ok):
    if ok:
        assert check_prefix(prefix) == prefix
    else:
        with pytest.raises(ValueError, match=r"^filename_prefix="):
            check_prefix(prefix)


def test_check_fits_names_the_inputs_and_the_estimate():
    check_fits(10, 10, inputs="x=1", what="w", where="host RAM", advice="a")
    with pytest.raises(ValueError) as e:
        check_fits(3 * 2**30, 2**30, inputs="width=8192, length=1025", what="Stage I frames",
                   where="host RAM", advice="use fewer frames")
    assert str(e.value) == ("width=8192, length=1025: Stage I frames needs about 3.0 GiB of host "
                            "RAM, but 1.0 GiB is available; use fewer frames")
    assert frames_bytes(81, 2560, 1408) == 81 * 2560 * 1408 * 3 * 4
