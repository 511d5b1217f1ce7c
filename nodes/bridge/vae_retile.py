"""The streaming VAE decoder's tile changed mid-run, its causal state kept exact.

Two reasons change the tile of a :class:`~.vae_stream.WanVAEStream` while it decodes: an
out-of-memory error (the tile is halved, :func:`~.oom.halved_tile`) and, after the first full
block, what that block really used (``stream.refit``, :class:`swift_core.fit.FirstTileFit`). The
causal caches are per tile, so after either the caches are rebuilt for the new tiles by decoding
the blocks so far again; the frames are then those of a run with the new tile from the start.
"""
from __future__ import annotations

from .oom import free_memory, halved_tile, is_oom


def decode_block(stream, latent):
    """Decode the next latent block(s) with ``stream`` (the VAE's output on its device),
    retrying with half the tile on out-of-memory and re-tiling after the first full block."""
    first_full = stream.refit is not None and len(stream.decoded) == 1
    if first_full:
        halved = len(stream.changes)
        stream.refit.start()
    while True:
        try:
            out = stream._decode(latent)
            break
        except Exception as error:      # the failed call's tensors go with this block
            if not (is_oom(error) and _halve(stream, latent.shape[-2:])):
                raise
        free_memory()
        replay(stream)
    stream.decoded.append(latent)
    if first_full:
        _settle(stream, lowered=len(stream.changes) > halved)
    return out


def replay(stream) -> None:
    """The causal caches rebuilt for the present tiles: the blocks so far decoded again."""
    for z in stream.decoded:
        stream._decode(z)


def _settle(stream, lowered: bool) -> None:
    now = stream.tile_px()
    new = stream.refit.settle(now, len(stream.decoded), lowered)
    if new == now:
        return
    stream.tile = 0 if new >= max(stream.frame_hw) else new // stream.SPATIAL
    stream.dec_caches = {}
    stream.changes.extend(stream.refit.changes[-1:])
    free_memory()
    replay(stream)


def _halve(stream, latent_hw) -> bool:
    new = halved_tile(stream.tile or max(latent_hw), len(stream.decoded), stream.changes)
    if new:
        stream.tile, stream.dec_caches = new, {}
    return bool(new)
