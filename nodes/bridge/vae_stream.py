"""The Wan 2.2 VAE driven one latent block at a time, with its causal state carried across calls.

This drives ComfyUI's VAE internals (the encoder/decoder feature-cache protocol), which core may
change in any release: ``vae_protocol`` checks the loaded VAE before any work, and where it
differs the pack falls back to core's own decode/encode and logs one line.
"""
from __future__ import annotations

import torch

import comfy.latent_formats
import comfy.ldm.wan.vae2_2 as wan22_vae
import comfy.model_management as mm

from ...swift_core.rules import TEMPORAL_STRIDE, WAN22_CHANNELS, WAN22_SPATIAL
from ...swift_core.tiling import tiled_apply
from .checks import check, check_stage2_vae
from .vae_protocol import CoreSegmentDecoder, check_slots, log_fallback, protocol_mismatch

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

    def load(self, latent_h: int, latent_w: int, decode: bool, with_models=()) -> None:
        """Ask ComfyUI for one block of one tile, not the whole video. ``with_models`` (the
        Stage II model when streaming) are loaded in the same call, so neither evicts the other."""
        th = min(latent_h, self.tile or latent_h)
        tw = min(latent_w, self.tile or latent_w)
        dtype = self.vae.vae_dtype
        if decode:
            need = self.vae.memory_used_decode((1, WAN22_CHANNELS, 1, th, tw), dtype)
        else:
            need = self.vae.memory_used_encode((1, 3, 5, th * self.SPATIAL, tw * self.SPATIAL), dtype)
        mm.load_models_gpu([*with_models, self.vae.patcher], memory_required=need,
                           force_full_load=getattr(self.vae, "disable_offload", False))

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
        """Raw latent blocks [1, C, k, h, w], in order -> IMAGE frames [n, H, W, 3] (0..1)."""
        z = latent.to(self.vae.vae_dtype).to(self.vae.device)
        out = tiled_apply(z, self._decode_tile, self.tile, self.overlap, self.SPATIAL,
                          self.dec_caches)
        pix = self.vae.process_output(out.to(self.vae.output_device).float())
        return pix[0].movedim(0, -1)                                   # [n, H, W, 3]


def block_decoder(vae, tile_px: int = 0, overlap_px: int = 64):
    """The Wan 2.2 VAE decoder for a stream of finished blocks: :class:`WanVAEStream` (exact, one
    block of one tile on the device at a time) or, if core's VAE protocol changed, the logged
    :class:`CoreSegmentDecoder` fallback."""
    check_stage2_vae(vae)
    reason = protocol_mismatch(vae)
    if reason is None:
        return WanVAEStream(vae, tile_px=tile_px, overlap_px=overlap_px)
    log_fallback(reason, "decoding each finished segment together with the video before it")
    return CoreSegmentDecoder(vae)


def encode_chunks(vae, chunks, latent_h: int, latent_w: int, tile_px: int, overlap_px: int,
                  on_chunk=None) -> torch.Tensor:
    """Encode IMAGE chunks (block-aligned, in order) into one raw latent, the causal state carried;
    ``on_chunk(i)`` after each (a progress bar: it also stops there on Cancel). If core's VAE
    protocol changed, the chunks are gathered and encoded by core's own ``vae.encode`` (logged)."""
    check_stage2_vae(vae)
    reason = protocol_mismatch(vae)
    if reason is not None:
        log_fallback(reason, "encoding the whole clip at once")
        frames = []
        for i, chunk in enumerate(chunks):
            frames.append(chunk[..., :3])
            if on_chunk is not None:
                on_chunk(i + 1)
        return vae.encode(torch.cat(frames)).float()
    stream = WanVAEStream(vae, tile_px=tile_px, overlap_px=overlap_px)
    stream.load(latent_h, latent_w, decode=False)
    out = []
    for i, chunk in enumerate(chunks):
        out.append(stream.encode(chunk))
        if on_chunk is not None:
            on_chunk(i + 1)
    return torch.cat(out, dim=2)


def dit_latent(raw: torch.Tensor) -> torch.Tensor:
    """A raw Wan 2.2 VAE latent as the Stage II DiT sees it: ComfyUI's own Wan 2.2 latent format
    (``process_in``, per-channel mean and std), applied by core sampling to the latent and to the
    concatenated reference alike. Training samples are stored in this space."""
    return comfy.latent_formats.Wan22().process_in(raw.float())
