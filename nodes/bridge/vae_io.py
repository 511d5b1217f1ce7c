"""The Wan 2.2 VAE as the nodes use it: :class:`WanVAEStream` (block by block, the causal state
carried) while core's VAE protocol is the one it drives, core's own decode/encode otherwise
(logged once per run), and the DiT's view of a latent."""
from __future__ import annotations

import torch

import comfy.latent_formats

from ...swift_core.rules import WAN22_SPATIAL
from .checks import check_stage2_vae
from .auto_fit import first_tile_fit, tile_for
from .oom import free_memory, halved_tile, is_oom
from .vae_protocol import CoreSegmentDecoder, log_fallback, protocol_mismatch
from .vae_stream import WanVAEStream


def block_decoder(vae, tile_px: int = 0, overlap_px: int = 64, *, asked_tile: int | None = None,
                  resident=()):
    """The Wan 2.2 VAE decoder for a stream of finished blocks: :class:`WanVAEStream` (exact, one
    block of one tile on the device at a time) or, if core's VAE protocol changed, the logged
    :class:`CoreSegmentDecoder` fallback. ``asked_tile``: the user's ``tile_size`` (0: auto),
    after which the tile is re-chosen on what the first full block used (``resident``: the
    models loaded with the VAE); None keeps ``tile_px``."""
    check_stage2_vae(vae)
    reason = protocol_mismatch(vae)
    if reason is None:
        stream = WanVAEStream(vae, tile_px=tile_px, overlap_px=overlap_px)
        if asked_tile is not None:
            stream.refit = first_tile_fit(vae, stream, overlap_px, resident, explicit=asked_tile)
        return stream
    log_fallback(reason, "decoding each finished segment together with the video before it")
    return CoreSegmentDecoder(vae)


def encode_chunks(vae, chunks, latent_h: int, latent_w: int, tile_px: int, overlap_px: int,
                  on_chunk=None, changes: list | None = None) -> torch.Tensor:
    """Encode IMAGE chunks (block-aligned, in order) into one raw latent, the causal state carried;
    ``on_chunk(i)`` after each (a progress bar: it also stops there on Cancel). ``tile_px`` 0:
    auto (the largest tile that fits, logged). ``chunks``: a function giving the chunks afresh
    (or, without a retry, the chunks): out of memory, the tile is halved and the clip encoded
    again from its first chunk (the causal state starts anew), logged and appended to
    ``changes``. If core's VAE protocol changed, the chunks are gathered and encoded by core's
    own ``vae.encode`` (logged)."""
    check_stage2_vae(vae)
    tile_px, _ = tile_for(vae, tile_px, latent_h * WAN22_SPATIAL, latent_w * WAN22_SPATIAL,
                          overlap_px, decode=False)
    fresh = chunks if callable(chunks) else (lambda: chunks)
    reason = protocol_mismatch(vae)
    if reason is not None:
        log_fallback(reason, "encoding the whole clip at once")
        frames = []
        for i, chunk in enumerate(fresh()):
            frames.append(chunk[..., :3])
            if on_chunk is not None:
                on_chunk(i + 1)
        return vae.encode(torch.cat(frames)).float()
    changes = [] if changes is None else changes
    tile = tile_px // WAN22_SPATIAL
    while True:
        try:
            return _encode_stream(vae, fresh(), latent_h, latent_w, tile * WAN22_SPATIAL,
                                  overlap_px, on_chunk)
        except Exception as error:          # the failed call's tensors go with this attempt
            if not (is_oom(error) and callable(chunks)):
                raise
            tile = halved_tile(tile or max(latent_h, latent_w), 0, changes, "encoder",
                               "from the first chunk again")
            if not tile:
                raise
        free_memory()


def _encode_stream(vae, chunks, latent_h, latent_w, tile_px, overlap_px, on_chunk):
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
