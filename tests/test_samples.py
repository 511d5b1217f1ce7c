"""The training-sample format: write, read back, and clear errors for wrong files."""
import pytest
import torch
from safetensors.torch import save_file

from swift_core.samples import read_sample, write_sample

META = {"width": 64, "height": 32, "frames": 9, "strength": 0.1, "steps": 1, "seed": 3,
        "synthesized": "true", "source": "clip.mp4", "start": 0, "pack_version": "0.1.0"}


def tensors(blocks=3):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(48, blocks, 2, 4, generator=g)
    ref = torch.randn(48, blocks, 2, 4, generator=g)
    ref[:, :1] = x0[:, :1]
    return x0, ref, torch.randn(7, 16, generator=g)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_round_trip(tmp_path, dtype):
    x0, ref, ctx = tensors()
    path = write_sample(str(tmp_path / "a.safetensors"), x0, ref, ctx, META, dtype=dtype)
    s = read_sample(path)
    tol = 1e-2 if dtype == "bfloat16" else 0
    assert torch.allclose(s.x0.float(), x0, atol=tol * 4, rtol=tol)
    assert torch.equal(s.context, ctx)
    assert torch.equal(s.anchor, s.reference[:, :1])
    assert s.meta["dtype"] == dtype and s.meta["anchor"] == "block 0 of x0"
    assert s.meta["latent_space"] == "wan22-normalized"
    assert s.meta["source"] == "clip.mp4" and s.meta["frames"] == "9"
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]      # no temp file left


def test_wrong_shape_refused_before_writing(tmp_path):
    x0, ref, ctx = tensors(blocks=2)                 # 9 frames need 3 blocks
    with pytest.raises(ValueError, match=r"x0 has shape \(48, 2, 2, 4\); expected \(48, 3, 2, 4\)"):
        write_sample(str(tmp_path / "a.safetensors"), x0, ref, ctx, META)
    assert not list(tmp_path.iterdir())


def test_truncated_file(tmp_path):
    path = write_sample(str(tmp_path / "a.safetensors"), *tensors(), META)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="a.safetensors: cannot be read"):
        read_sample(path)


def test_foreign_file(tmp_path):
    path = str(tmp_path / "model.safetensors")
    save_file({"x0": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a SwiftI2V training sample"):
        read_sample(path)


def hand_written(path, tensors, **meta_over):
    """A file written without write_sample (to make it wrong on purpose)."""
    meta = {**{k: str(v) for k, v in META.items()}, "format": "swifti2v-sample", "version": "1",
            "anchor": "block 0 of x0", "latent_space": "wan22-normalized", "dtype": "float32",
            **meta_over}
    save_file(tensors, str(path), metadata=meta)
    return str(path)


@pytest.mark.parametrize("keys,meta,needle", [
    (("x0", "context"), {}, r"missing \['reference'\]"),
    (("x0", "reference", "context"), {"latent_space": "raw"}, "latents in space 'raw'"),
])
def test_hand_written_files_refused(tmp_path, keys, meta, needle):
    x0, ref, ctx = tensors()
    every = {"x0": x0, "reference": ref, "context": ctx}
    path = hand_written(tmp_path / "b.safetensors", {k: every[k] for k in keys}, **meta)
    with pytest.raises(ValueError, match=needle):
        read_sample(path)
