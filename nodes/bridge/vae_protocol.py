"""The Wan 2.2 VAE protocol that ``vae_stream`` drives, checked at run time, and core's fallback.

``WanVAEStream`` calls ComfyUI's VAE internals: the module's ``count_conv3d``/``patchify``, the
encoder's and decoder's ``forward(x, feat_cache, feat_idx[, first_chunk])`` with one cache slot per
causal convolution. Core rewrote exactly this protocol in its Wan 2.1 VAE between 0.8 and 0.33;
if the Wan 2.2 VAE follows, :func:`protocol_mismatch` says why before any work, and the pack uses
core's own decode (:class:`CoreSegmentDecoder`) or encode instead, with one log line.
"""
from __future__ import annotations

import inspect
import logging
import sys
from typing import Optional

import torch

from ...swift_core.sizes import video_frames

#: The forward signatures WanVAEStream calls, as ComfyUI 0.3.64 to 0.33 define them.
PROTOCOL = {"encoder": ("x", "feat_cache", "feat_idx"),
            "decoder": ("x", "feat_cache", "feat_idx", "first_chunk")}


def protocol_mismatch(vae) -> Optional[str]:
    """Why the loaded Wan 2.2 VAE no longer has the block-by-block protocol that
    :class:`WanVAEStream` drives (names, forward signatures, one cache slot per causal conv in the
    module tree), or None when it has it."""
    net = vae.first_stage_model
    mod = sys.modules.get(type(net).__module__)
    for name in ("count_conv3d", "patchify", "unpatchify"):
        if not callable(getattr(mod, name, None)):
            return f"{getattr(mod, '__name__', mod)}.{name} is missing"
    for part in ("encoder", "decoder", "conv1", "conv2"):
        if not isinstance(getattr(net, part, None), torch.nn.Module):
            return f"{type(net).__name__}.{part} is missing"
    for part, want in PROTOCOL.items():
        try:
            got = tuple(inspect.signature(getattr(net, part).forward).parameters)
        except (TypeError, ValueError):
            got = None
        if got != want:
            return f"{type(net).__name__}.{part}.forward takes {got}, the stream drives {want}"
        slots = mod.count_conv3d(getattr(net, part))
        convs = sum(type(m).__name__ == "CausalConv3d" for m in getattr(net, part).modules())
        if slots != convs:
            return (f"{part}: {mod.__name__}.count_conv3d gives {slots} cache slots for "
                    f"{convs} causal convolutions")
    return None


def check_slots(used: int, slots: int, cache: dict, part: str) -> None:
    """Every call must use the same number of cache slots, within those allocated (a 1x1 shortcut
    convolution holds none, so fewer than ``count_conv3d`` is the rule, not an error)."""
    first = cache.setdefault("slots_used", used)
    if not 0 < used <= slots or used != first:
        raise RuntimeError(f"Wan 2.2 VAE {part}: a call used {used} of {slots} cache slots (the "
                           f"first used {first}); ComfyUI's VAE protocol has changed under the "
                           "pack (please report it with your ComfyUI version)")


def log_fallback(reason: str, what: str) -> None:
    logging.warning("SwiftI2V: ComfyUI's Wan 2.2 VAE differs from the protocol the pack streams "
                    "with (%s); %s with core's own VAE instead.", reason, what)


def vae_decode(vae, latent: torch.Tensor) -> torch.Tensor:
    """ComfyUI's own one-shot decode, as IMAGE frames [n, H, W, C]."""
    images = vae.decode(latent)
    return images.reshape((-1,) + tuple(images.shape[-3:]))


class CoreSegmentDecoder:
    """The fallback of ``WanVAEStream`` for decoding: core's own ``vae.decode`` of the video so far
    each time a segment is final, keeping only the new frames. The causal decoder's state reaches
    back over many blocks, so a short overlap is not enough (a 2-block warm-up measured 14-19 dB
    from core's decode on the random test VAE); this is exact, and slower as the video grows."""

    exact_per_block = False

    def __init__(self, vae):
        self.vae, self.past = vae, None

    def load(self, latent_h: int, latent_w: int, decode: bool, with_models=()) -> None:
        """core's ``vae.decode`` loads the VAE itself."""

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        z = latent if self.past is None else torch.cat([self.past, latent.to(self.past)], dim=2)
        frames = vae_decode(self.vae, z)
        if self.past is not None:                    # first block: 1 frame, then 4 per block
            frames = frames[video_frames(self.past.shape[2]):]
        self.past = z
        return frames.float()
