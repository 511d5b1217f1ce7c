"""Checks of inputs that are ComfyUI objects (models, VAEs, IMAGE batches), as input errors.

Rules on plain values live in ``swift_core.rules``; both raise its ``SwiftInputError``.
"""
from __future__ import annotations

import comfy.ldm.wan.vae2_2 as wan22_vae
from comfy_execution.graph_utils import ExecutionBlocker

from ...swift_core.reference import check_image_batch
from ...swift_core.rules import (STAGE2_CHANNELS, WAN21_CHANNELS, WAN22_CHANNELS,  # noqa: F401
                                 SwiftInputError, check)


def check_image(image, name: str) -> None:
    check(image is not None, f"{name}: expected an IMAGE batch [N>=1, H, W, 3], got nothing")
    check_image_batch(image, name)


def video_latent(samples, name: str, what: str = "a Wan 2.2 video latent"):
    """The [1, C, T', H', W'] tensor (C: the Wan 2.2 VAE's channels) of a LATENT, or an error naming the input."""
    latent = samples.get("samples") if isinstance(samples, dict) else None
    check(latent is not None and latent.ndim == 5 and latent.shape[1] == WAN22_CHANNELS,
          f"{name}: expected {what} [1, {WAN22_CHANNELS}, T', H', W'], got "
          f"{None if latent is None else tuple(latent.shape)}")
    check(latent.shape[0] == 1, f"{name}: batch of {latent.shape[0]} latents; one video at a time")
    return latent


def reference_latent(reference):
    """The Hybrid Reference Builder's LATENT (raw Wan 2.2 VAE space; block 0 is the anchor)."""
    latent = video_latent(reference, "reference",
                          "the Hybrid Reference Builder's latent (Wan 2.2, block 0 = anchor)")
    check(latent.shape[2] >= 2, f"reference: {latent.shape[2]} latent block(s); Stage II needs the "
                                "anchor block plus at least one block to generate (length >= 5)")
    return latent.float()


def text_embedding(conditioning, name: str):
    """The text embedding [L, D] of a CONDITIONING (its first entry), or an error naming it."""
    ok = isinstance(conditioning, (list, tuple)) and len(conditioning) > 0
    emb = conditioning[0][0] if ok else None
    check(emb is not None and hasattr(emb, "ndim") and emb.ndim == 3 and emb.shape[0] == 1,
          f"{name}: expected a CONDITIONING from a text encoder (one [1, L, D] embedding), got "
          f"{None if emb is None else tuple(getattr(emb, 'shape', ()))}")
    return emb[0]


def vae_channels(vae) -> int:
    return int(getattr(vae, "latent_channels", 0))


def check_stage2_vae(vae, name: str = "vae") -> None:
    c = vae_channels(vae)
    check(c == WAN22_CHANNELS and isinstance(vae.first_stage_model, wan22_vae.WanVAE),
          f"{name}: expected the Wan 2.2 VAE ({WAN22_CHANNELS} latent channels, "
          f"wan2.2_vae.safetensors); got a VAE with {c} latent channels"
          + (" (that is the Wan 2.1 VAE: it belongs to Stage I)" if c == WAN21_CHANNELS else ""))


def check_stage1_vae(vae, name: str = "vae") -> None:
    c = vae_channels(vae)
    check(c == WAN21_CHANNELS, f"{name}: expected the Wan 2.1 VAE ({WAN21_CHANNELS} latent channels, "
                               f"wan_2.1_vae.safetensors) for Stage I; got a VAE with {c} latent channels")


def diffusion_model(model):
    return model.model.diffusion_model


def _wan_dit(model, name: str, expected: str):
    dm = getattr(getattr(model, "model", None), "diffusion_model", None)
    check(dm is not None and hasattr(dm, "patch_embedding") and hasattr(dm, "rope_encode"),
          f"{name}: expected {expected}, got "
          f"{type(dm).__name__ if dm is not None else type(getattr(model, 'model', model)).__name__}")
    return dm


def stage2_channels(model) -> int:
    return int(diffusion_model(model).patch_embedding.weight.shape[1])


def resolve_mode(model, mode: str, name: str = "model") -> str:
    """``auto`` picks from the Stage II model's patch-embedding input channels."""
    dm = _wan_dit(model, name, "a Wan 2.2 TI2V Stage II diffusion model")
    c = stage2_channels(model)
    out_c = int(getattr(dm, "out_dim", WAN22_CHANNELS))
    check(c in STAGE2_CHANNELS and out_c == WAN22_CHANNELS,
          f"{name}: the Stage II model must take {2 * WAN22_CHANNELS} input channels (SwiftI2V "
          f"weights) or {WAN22_CHANNELS} (public Wan2.2-TI2V-5B) and output {WAN22_CHANNELS}; "
          f"found {c} input / {out_c} output channels")
    found = STAGE2_CHANNELS[c]
    if mode == "auto":
        return found
    check(mode == found, f"mode={mode!r}: the loaded Stage II model has {c} input channels, "
                         f"which needs mode {found!r} (or 'auto')")
    return mode


def check_stage1_model(model, vae, name: str = "model") -> None:
    """Stage I takes a Wan I2V model whose input is the VAE's latent plus its image conditioning
    (Wan 2.1 I2V: 16 + 4 mask + 16 image = 36 channels, with a CLIP image embedding)."""
    dm = _wan_dit(model, name, "a Wan 2.1 I2V diffusion model (wan2.1_i2v_480p_14B)")
    c_in = int(dm.patch_embedding.weight.shape[1])
    c_out = int(getattr(dm, "out_dim", 0))
    lat = vae_channels(vae)
    want = 2 * lat + 4
    check(c_out == lat and c_in == want,
          f"{name}: Stage I needs a Wan I2V model taking the Stage I VAE's {lat}-channel latent plus "
          f"its image conditioning ({want} input channels, {lat} output: Wan 2.1 I2V 14B); the "
          f"loaded model has {c_in} input / {c_out} output channels"
          + (" (that looks like Wan 2.2 TI2V 5B: it belongs to Stage II)"
             if c_out == WAN22_CHANNELS else ""))


def output_used(prompt, node_id, index: int) -> bool:
    """Whether any node of the API-format ``prompt`` takes output ``index`` of ``node_id``."""
    links = (v for node in (prompt or {}).values() if isinstance(node, dict)
             for v in node.get("inputs", {}).values())
    return any(isinstance(v, (list, tuple)) and len(v) == 2 and str(v[0]) == str(node_id)
               and v[1] == index for v in links)


def blocked(message: str):
    """An output that is not there: a node that takes it stops with ``message`` (core's
    ExecutionBlocker), instead of receiving None."""
    return ExecutionBlocker(message)
