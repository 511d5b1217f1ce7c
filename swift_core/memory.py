"""Memory model of one CSG window through a Wan DiT, and the largest M that fits a budget.

The estimate counts the activations alive at the peak of one forward, per token: the larger of
the attention phase (``11 * dim``: residual stream, norm, q/k/v, attention output) and the FFN
phase (``4 * dim + 2 * ffn``), plus the patch embedding's input and output
(``(2 * in + 3 * out) * patch_area``: fp32 input, bf16 output), plus ``8 * dim`` when the timestep
embedding is computed per token (diffusers' TI2V path; ComfyUI's Wan computes it per latent
frame). Attention is memory-efficient (flash / SDPA / xformers: no L x L scores). The
coefficients were fitted to FakeTensorMode traces of ComfyUI's WanModel (``python -m
bench.window_memory``: within 2% at the Wan2.2-TI2V-5B config) and are checked against measured
peaks of diffusers' Wan in tests/test_memory.py.

The Wan 2.2 VAE, driven one latent block at a time with its causal cache, holds about
``3833`` (decode) and ``1508`` (encode) values per pixel of a tile at its peak (same traces).
"""
from __future__ import annotations

from dataclasses import dataclass

from .plan import largest_window, plan_segments
from .rules import SwiftInputError

K_ATTN = 11         # attention phase: residual stream, norm, q/k/v, attention output (x dim)
K_FFN_DIM = 4       # FFN phase: residual stream, norm, FFN output (x dim), plus 2 x ffn
K_TIMESTEP = 8      # per-token time embedding: 6*dim projection, temb, activation
K_VAE_DECODE = 3833     # values per tile pixel: one latent block (4 frames) through the decoder
K_VAE_ENCODE = 1508     # values per tile pixel: 4 frames through the encoder


@dataclass(frozen=True)
class WanDiTConfig:
    dim: int
    heads: int
    ffn: int
    layers: int
    in_channels: int = 48
    out_channels: int = 48
    patch: tuple[int, int, int] = (1, 2, 2)
    text_len: int = 512

    @property
    def params(self) -> int:
        """Approximate parameter count (blocks only)."""
        per_block = 4 * self.dim * self.dim * 2 + 2 * self.dim * self.ffn
        return self.layers * per_block

    def tokens(self, blocks: int, latent_h: int, latent_w: int) -> int:
        p_t, p_h, p_w = self.patch
        return (blocks // p_t) * (latent_h // p_h) * (latent_w // p_w)

    def flops(self, blocks: int, latent_h: int, latent_w: int) -> float:
        """Matrix-product FLOPs of one forward (2 per multiply-add), counted as in SPEC."""
        L = self.tokens(blocks, latent_h, latent_w)
        d, f = self.dim, self.ffn
        linear = 2 * L * (4 * d * d + 2 * d * d + 2 * d * f)   # self-attn qkvo, cross q/o, ffn
        attn = 4 * L * L * d                                     # QK^T and AV
        cross = 4 * L * self.text_len * d
        return self.layers * (linear + attn + cross)


#: Wan2.2-TI2V-5B (the SwiftI2V Stage II model has 96 input channels).
WAN22_TI2V_5B = WanDiTConfig(dim=3072, heads=24, ffn=14336, layers=30, in_channels=96)

def window_activation_bytes(cfg: WanDiTConfig, blocks: int, latent_h: int, latent_w: int, *,
                            batch: int = 1, dtype_bytes: int = 2,
                            per_token_timestep: bool = False) -> int:
    """Estimated peak activation bytes of one forward over a window of ``blocks`` latent blocks."""
    p_area = cfg.patch[1] * cfg.patch[2]
    per_token = (max(K_ATTN * cfg.dim, K_FFN_DIM * cfg.dim + 2 * cfg.ffn)
                 + (2 * cfg.in_channels + 3 * cfg.out_channels) * p_area
                 + (K_TIMESTEP * cfg.dim if per_token_timestep else 0))
    return int(batch * cfg.tokens(blocks, latent_h, latent_w) * per_token * dtype_bytes)


def vae_tile_bytes(tile_h: int, tile_w: int, *, decode: bool = True, dtype_bytes: int = 2,
                   frame_h: int = 0, frame_w: int = 0) -> int:
    """Estimated peak bytes of the Wan 2.2 VAE on one tile of ``tile_h`` x ``tile_w`` pixels, one
    latent block at a time; a tiled decode also keeps the block's 4 blended frames of
    ``frame_h`` x ``frame_w`` (float32 output and weights) on the device."""
    per_px = K_VAE_DECODE if decode else K_VAE_ENCODE
    blend = 2 * 4 * 3 * 4 * frame_h * frame_w if decode and (tile_h, tile_w) != (frame_h, frame_w) \
        else 0
    return int(per_px * tile_h * tile_w * dtype_bytes + blend)


def max_window_blocks(num_blocks: int, m: int, n: int) -> int:
    """Blocks in the largest window of the CSG plan of ``num_blocks`` blocks, ``m`` and ``n``:
    the window that plan really builds (:func:`swift_core.plan.largest_window`)."""
    return largest_window(plan_segments(num_blocks, m, n))


GIB = 2 ** 30


def frames_bytes(frames: int, width: int, height: int, channels: int = 3,
                 dtype_bytes: int = 4) -> int:
    """Bytes of ``frames`` IMAGE frames (ComfyUI's float32 [N, H, W, C])."""
    return int(frames) * int(width) * int(height) * channels * dtype_bytes


def check_fits(need_bytes: int, available_bytes: int, *, inputs: str, what: str, where: str,
               advice: str) -> None:
    """Refuse before allocating: ``inputs`` names the inputs, ``what`` the allocation."""
    if need_bytes > available_bytes:
        raise SwiftInputError(f"{inputs}: {what} needs about {need_bytes / GIB:.1f} GiB of {where}, "
                         f"but {available_bytes / GIB:.1f} GiB is available; {advice}")


#: bytes per parameter of full fine-tuning with AdamW: fp32 weights, gradients, two moments
TRAIN_STATE_BYTES = 16


def training_state_bytes(cfg: WanDiTConfig, world: int = 1) -> int:
    """fp32 weights, gradients and AdamW moments, sharded over ``world`` ranks (FSDP)."""
    return TRAIN_STATE_BYTES * cfg.params // max(world, 1)


#: Bytes per token that one Wan block keeps for its backward pass, per unit of ``dim`` (diffusers'
#: Wan: fp32 norms, modulation and residual adds around bf16 projections) beside the FFN's
#: ``4 * ffn`` (its bf16 hidden state before and after the GELU). Fitted to ``python -m
#: bench.train_memory``'s FSDP2 traces of the real Wan2.2-TI2V-5B: 371 KB a token a block.
K_TRAIN_DIM = 102
#: diffusers' Wan keeps its residual stream (a checkpointed block's input) in fp32
RESIDUAL_BYTES = 4


def training_checkpoint_bytes(cfg: WanDiTConfig, blocks: int, latent_h: int, latent_w: int,
                              dtype_bytes: int = RESIDUAL_BYTES) -> int:
    """With activation checkpointing, the block inputs kept for the backward pass."""
    return cfg.layers * cfg.tokens(blocks, latent_h, latent_w) * cfg.dim * dtype_bytes


def training_block_bytes(cfg: WanDiTConfig, blocks: int, latent_h: int, latent_w: int) -> int:
    """What one block's forward keeps for its backward pass."""
    return cfg.tokens(blocks, latent_h, latent_w) * (K_TRAIN_DIM * cfg.dim + 4 * cfg.ffn)


def training_activation_bytes(cfg: WanDiTConfig, blocks: int, latent_h: int, latent_w: int,
                              checkpointing: bool = True) -> int:
    """Activations of one training step at its peak: with checkpointing every block's input
    plus one block recomputed for its backward; without, every block's saved tensors. Within 5%
    of the traces at 2560x1408 and 1920x1088 (docs/training.md)."""
    block = training_block_bytes(cfg, blocks, latent_h, latent_w)
    if checkpointing:
        return training_checkpoint_bytes(cfg, blocks, latent_h, latent_w) + block
    return cfg.layers * block


def training_flops(cfg: WanDiTConfig, blocks: int, latent_h: int, latent_w: int,
                   checkpointing: bool = True) -> float:
    """Forward + backward (2x) + recomputed forward with checkpointing: 4 (else 3) forwards."""
    return (4 if checkpointing else 3) * cfg.flops(blocks, latent_h, latent_w)
