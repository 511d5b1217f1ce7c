"""The Wan 2.2 VAE driven one latent block at a time, with its causal state carried across calls.

This drives ComfyUI's VAE internals (the encoder/decoder feature-cache protocol), which core may
change in any release: ``vae_protocol`` checks the loaded VAE before any work, and where it
differs the pack falls back to core's own decode/encode and logs one line.
"""
from __future__ import annotations

import torch

import comfy.ldm.wan.vae2_2 as wan22_vae
import comfy.model_management as mm

from ...swift_core.fit import MARGIN
from ...swift_core.memory import vae_tile_bytes
from ...swift_core.rules import TEMPORAL_STRIDE, WAN22_SPATIAL
from ...swift_core.tiling import tiled_apply
from .checks import check, check_stage2_vae
from .vae_retile import decode_block
from .vae_protocol import check_slots

class WanVAEStream:
    """Drives the Wan 2.2 VAE one latent block at a time with a causal cache of our own.

    ComfyUI clears the VAE's causal feature cache at every encode/decode call; this keeps one
    cache per spatial tile across calls, so time-chunked encoding/decoding equals one-shot
    encoding/decoding while only one block of frames is on the device at a time. Tiles are given
    in pixels like core's tiled VAE nodes (``tile_px`` 0 = whole frame; multiples of 16, one latent
    unit) and blended linearly over ``overlap_px``; internally they are latent units.
    """

    SPATIAL = WAN22_SPATIAL
    exact_per_block = True

    def __init__(self, vae, tile_px: int = 0, overlap_px: int = 64):
        check_stage2_vae(vae)
        self.vae, self.net = vae, vae.first_stage_model
        self.tile, self.overlap = tile_px // self.SPATIAL, overlap_px // self.SPATIAL
        self.enc_caches: dict = {}
        self.dec_caches: dict = {}
        self.frames_in = 0
        self.decoded: list = []         # the latent blocks decoded so far (replayed on a retry)
        self.changes: list = []         # what an out-of-memory retry changed, for the plan string
        self.refit = None               # swift_core.fit.FirstTileFit (vae_io.block_decoder sets it)

    def load(self, latent_h: int, latent_w: int, decode: bool, with_models=()) -> None:
        """Ask ComfyUI for one block of one tile, not the whole video, on the pack's own
        estimate (``swift_core.memory.vae_tile_bytes``, traced; core's ``memory_used_decode`` is
        about twice it for this VAE). ``with_models`` (the Stage II model when streaming) are
        loaded in the same call, so neither evicts the other."""
        self.frame_hw = (latent_h * self.SPATIAL, latent_w * self.SPATIAL)
        need = int(self.tile_bytes(self.tile_px(), decode) * MARGIN)
        mm.load_models_gpu([*with_models, self.vae.patcher], memory_required=need,
                           force_full_load=getattr(self.vae, "disable_offload", False))

    def tile_px(self) -> int:
        """The tile in pixels (the whole frame's larger side when not tiled)."""
        return self.tile * self.SPATIAL if self.tile else max(self.frame_hw)

    def tile_bytes(self, tile_px: int, decode: bool = True) -> int:
        h, w = self.frame_hw
        return vae_tile_bytes(min(h, tile_px), min(w, tile_px), decode=decode,
                              dtype_bytes=mm.dtype_size(self.vae.vae_dtype), frame_h=h, frame_w=w)

    def _encode_tile(self, x, cache):
        feat = cache.setdefault("feat", [None] * wan22_vae.count_conv3d(self.net.encoder))
        x = wan22_vae.patchify(x, patch_size=2)
        outs, t = [], 0
        while t < x.shape[2]:
            n = 1 if cache.get("frames", 0) == 0 else TEMPORAL_STRIDE
            idx = [0]
            outs.append(self.net.encoder(x[:, :, t:t + n], feat_cache=feat, feat_idx=idx))
            check_slots(idx[0], len(feat), cache, "encoder")
            cache["frames"] = cache.get("frames", 0) + n
            t += n
        return self.net.conv1(torch.cat(outs, dim=2)).chunk(2, dim=1)[0]

    def _decode_tile(self, z, cache):
        feat = cache.setdefault("feat", [None] * wan22_vae.count_conv3d(self.net.decoder))
        x = self.net.conv2(z)
        outs = []
        for i in range(x.shape[2]):
            first, idx = cache.get("blocks", 0) == 0, [0]
            outs.append(self.net.decoder(x[:, :, i:i + 1], feat_cache=feat, feat_idx=idx,
                                         first_chunk=first))
            check_slots(idx[0], len(feat), cache, "decoder")
            cache["blocks"] = cache.get("blocks", 0) + 1
        return wan22_vae.unpatchify(torch.cat(outs, dim=2), patch_size=2)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """IMAGE frames [n, H, W, 3] (0..1) -> raw latent [1, C, k, H/16, W/16].

        The first call must start at frame 0 with 1 + 4j frames, later calls with 4j frames.
        """
        n = frames.shape[0]
        t = TEMPORAL_STRIDE
        check((self.frames_in == 0 and (n - 1) % t == 0) or (self.frames_in > 0 and n % t == 0),
              f"frames: chunk of {n} frames does not align with the VAE's {t}-frame blocks")
        pix = frames[..., :3].movedim(-1, 0).unsqueeze(0)            # [1, 3, n, H, W]
        pix = self.vae.process_input(pix).to(self.vae.vae_dtype).to(self.vae.device)
        out = tiled_apply(pix, self._encode_tile, self.tile * self.SPATIAL,
                          self.overlap * self.SPATIAL, 1 / self.SPATIAL, self.enc_caches)
        self.frames_in += n
        return out.to(self.vae.output_device).float()

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent blocks [1, C, k, h, w], in order -> IMAGE frames [n, H, W, 3] (0..1); the
        tile may change on the way (:func:`vae_retile.decode_block`: out of memory, or what the
        first full block measured), the causal state replayed for the new tiles."""
        out = decode_block(self, latent)
        pix = self.vae.process_output(out.to(self.vae.output_device).float())
        return pix[0].movedim(0, -1)                                   # [n, H, W, 3]

    def _decode(self, latent):
        z = latent.to(self.vae.vae_dtype).to(self.vae.device)
        return tiled_apply(z, self._decode_tile, self.tile, self.overlap, self.SPATIAL,
                           self.dec_caches)
