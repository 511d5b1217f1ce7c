"""The one module that calls into ComfyUI internals.

Node files translate types and call this module and ``swift_core``; when ComfyUI changes, only this
file changes. Checked against ComfyUI 0.3.64 and 0.8.0 (see tests/host/).
"""
from __future__ import annotations

import inspect
import math
import os
import uuid
from typing import Callable

import torch

import comfy.ldm.common_dit
import comfy.ldm.wan.vae2_2 as wan22_vae
import comfy.model_management as mm
import comfy.model_patcher
import comfy.patcher_extension as pe
import comfy.sample
import comfy.sampler_helpers
import comfy.samplers
import comfy.utils
import folder_paths
import latent_preview
import node_helpers

from ..swift_core import max_window_blocks, sample_csg, window_activation_bytes
from ..swift_core.sampling import check_inputs
from ..swift_core.tiling import tiled_apply
from ..swift_core.memory import WanDiTConfig

SAMPLER_NAMES = comfy.samplers.KSampler.SAMPLERS
SCHEDULER_NAMES = comfy.samplers.KSampler.SCHEDULERS
STAGE2_CHANNELS = {96: "swifti2v", 48: "refine"}
ROPE_KEY = "swifti2v_positions"


class SwiftInputError(ValueError):
    """A user's input is wrong; the message names the input and the rule."""


# ------------------------------------------------------------------------------------- checks
def check(cond: bool, message: str) -> None:
    if not cond:
        raise SwiftInputError(message)


def vae_channels(vae) -> int:
    return int(getattr(vae, "latent_channels", 0))


def check_stage2_vae(vae, name: str = "vae") -> None:
    c = vae_channels(vae)
    check(c == 48 and isinstance(vae.first_stage_model, wan22_vae.WanVAE),
          f"{name}: expected the Wan 2.2 VAE (48 latent channels, wan2.2_vae.safetensors); got a VAE "
          f"with {c} latent channels" + (" (that is the Wan 2.1 VAE: it belongs to Stage I)"
                                         if c == 16 else ""))


def check_stage1_vae(vae, name: str = "vae") -> None:
    c = vae_channels(vae)
    check(c == 16, f"{name}: expected the Wan 2.1 VAE (16 latent channels, wan_2.1_vae.safetensors) "
                   f"for Stage I; got a VAE with {c} latent channels")


def check_image(image, name: str) -> None:
    check(image is not None and image.ndim == 4 and image.shape[0] >= 1,
          f"{name}: expected an IMAGE with at least one frame, got "
          f"{'nothing' if image is None else tuple(image.shape)}")


def as_input_error(fn: Callable, *args, **kwargs):
    """Run a swift_core check, re-raising its ValueError as the node's input error."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        raise SwiftInputError(str(e)) from None


def diffusion_model(model):
    return model.model.diffusion_model


def stage2_channels(model) -> int:
    return int(diffusion_model(model).patch_embedding.weight.shape[1])


def resolve_mode(model, mode: str) -> str:
    """``auto`` picks from the Stage II model's patch-embedding input channels."""
    dm = getattr(model.model, "diffusion_model", None)
    check(dm is not None and hasattr(dm, "patch_embedding") and hasattr(dm, "rope_encode"),
          f"model: expected a Wan 2.2 TI2V Stage II diffusion model, got "
          f"{type(dm).__name__ if dm is not None else type(model.model).__name__}")
    c = stage2_channels(model)
    out_c = int(getattr(dm, "out_dim", 48))
    check(c in STAGE2_CHANNELS and out_c == 48,
          f"model: the Stage II model must take 96 input channels (SwiftI2V weights) or 48 "
          f"(public Wan2.2-TI2V-5B) and output 48; found {c} input / {out_c} output channels")
    found = STAGE2_CHANNELS[c]
    if mode == "auto":
        return found
    check(mode == found, f"mode={mode!r}: the loaded Stage II model has {c} input channels, "
                         f"which needs mode {found!r} (or 'auto')")
    return mode


def dit_config(model) -> WanDiTConfig:
    dm = diffusion_model(model)
    return WanDiTConfig(dim=dm.dim, heads=dm.num_heads, ffn=dm.ffn_dim, layers=dm.num_layers,
                        in_channels=stage2_channels(model), out_channels=dm.out_dim,
                        patch=tuple(dm.patch_size))


# ----------------------------------------------------------------------------- progress
def progress_bar(total: int):
    return comfy.utils.ProgressBar(total)


def previewer(model):
    """ComfyUI's latent previewer for this model (None when previews are off)."""
    return latent_preview.get_previewer(model.load_device, model.model.latent_format)


def preview_image(prev, x0):
    """A preview of the last latent frame of ``x0`` [B, C, T, H, W] for the progress bar."""
    if prev is None or x0 is None:
        return None
    return prev.decode_latent_to_preview_image("JPEG", x0[:, :, -1:])


def throw_if_interrupted() -> None:
    mm.throw_exception_if_processing_interrupted()


def intermediate_device():
    return mm.intermediate_device()


# --------------------------------------------------------------------------- VAE streaming
class WanVAEStream:
    """Drives the Wan 2.2 VAE one latent block at a time with a causal cache of our own.

    ComfyUI clears the VAE's causal feature cache at every encode/decode call; this keeps one
    cache per spatial tile across calls, so time-chunked encoding/decoding equals one-shot
    encoding/decoding while only one block of frames is on the device at a time. Tiles are in
    latent units (``tile`` 0 = whole frame) and blended linearly over ``overlap``.
    """

    SPATIAL = 16

    def __init__(self, vae, tile: int = 0, overlap: int = 4):
        check_stage2_vae(vae)
        self.vae, self.net = vae, vae.first_stage_model
        self.tile, self.overlap = tile, overlap
        self.enc_caches: dict = {}
        self.dec_caches: dict = {}
        self.frames_in = 0

    # loading: ask ComfyUI for one block of one tile, not the whole video
    def load(self, latent_h: int, latent_w: int, decode: bool) -> None:
        th = min(latent_h, self.tile or latent_h)
        tw = min(latent_w, self.tile or latent_w)
        dtype = self.vae.vae_dtype
        if decode:
            need = self.vae.memory_used_decode((1, 48, 1, th, tw), dtype)
        else:
            need = self.vae.memory_used_encode((1, 3, 5, th * self.SPATIAL, tw * self.SPATIAL), dtype)
        mm.load_models_gpu([self.vae.patcher], memory_required=need,
                           force_full_load=getattr(self.vae, "disable_offload", False))

    def _encode_tile(self, x, cache):
        feat = cache.setdefault("feat", [None] * wan22_vae.count_conv3d(self.net.encoder))
        x = wan22_vae.patchify(x, patch_size=2)
        outs, t = [], 0
        while t < x.shape[2]:
            n = 1 if cache.get("frames", 0) == 0 else 4
            outs.append(self.net.encoder(x[:, :, t:t + n], feat_cache=feat, feat_idx=[0]))
            cache["frames"] = cache.get("frames", 0) + n
            t += n
        return self.net.conv1(torch.cat(outs, dim=2)).chunk(2, dim=1)[0]

    def _decode_tile(self, z, cache):
        feat = cache.setdefault("feat", [None] * wan22_vae.count_conv3d(self.net.decoder))
        x = self.net.conv2(z)
        outs = []
        for i in range(x.shape[2]):
            first = cache.get("blocks", 0) == 0
            outs.append(self.net.decoder(x[:, :, i:i + 1], feat_cache=feat, feat_idx=[0],
                                         first_chunk=first))
            cache["blocks"] = cache.get("blocks", 0) + 1
        return wan22_vae.unpatchify(torch.cat(outs, dim=2), patch_size=2)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """IMAGE frames [n, H, W, 3] (0..1) -> raw latent [1, 48, k, H/16, W/16].

        The first call must start at frame 0 with 1 + 4j frames, later calls with 4j frames.
        """
        n = frames.shape[0]
        check((self.frames_in == 0 and (n - 1) % 4 == 0) or (self.frames_in > 0 and n % 4 == 0),
              f"frames: chunk of {n} frames does not align with the VAE's 4-frame blocks")
        pix = frames[..., :3].movedim(-1, 0).unsqueeze(0)            # [1, 3, n, H, W]
        pix = self.vae.process_input(pix).to(self.vae.vae_dtype).to(self.vae.device)
        out = tiled_apply(pix, self._encode_tile, self.tile * self.SPATIAL,
                          self.overlap * self.SPATIAL, 1 / self.SPATIAL, self.enc_caches)
        self.frames_in += n
        return out.to(self.vae.output_device).float()

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent blocks [1, 48, k, h, w], in order -> IMAGE frames [n, H, W, 3] (0..1)."""
        z = latent.to(self.vae.vae_dtype).to(self.vae.device)
        out = tiled_apply(z, self._decode_tile, self.tile, self.overlap, self.SPATIAL,
                          self.dec_caches)
        pix = self.vae.process_output(out.to(self.vae.output_device).float())
        return pix[0].movedim(0, -1)                                   # [n, H, W, 3]


def vae_decode(vae, latent: torch.Tensor) -> torch.Tensor:
    """ComfyUI's own one-shot decode, as IMAGE frames [n, H, W, C]."""
    images = vae.decode(latent)
    return images.reshape((-1,) + tuple(images.shape[-3:]))


# ------------------------------------------------------------------------------- Stage I
def stage1_conditioning(positive, negative, vae, image, width: int, height: int, length: int,
                        clip_vision_output=None):
    """Condition the way ComfyUI's WanImageToVideo does: the start image, padded with grey."""
    image = image[:1, ..., :3].to(intermediate_device())
    pad = torch.full((length, height, width, 3), 0.5, dtype=image.dtype, device=image.device)
    pad[:1] = image
    concat = vae.encode(pad)
    blocks = (length - 1) // 4 + 1
    mask = torch.ones((1, 1, blocks, concat.shape[-2], concat.shape[-1]), dtype=image.dtype,
                      device=image.device)
    mask[:, :, :1] = 0.0
    values = {"concat_latent_image": concat, "concat_mask": mask}
    if clip_vision_output is not None:
        values["clip_vision_output"] = clip_vision_output
    positive = node_helpers.conditioning_set_values(positive, values)
    negative = node_helpers.conditioning_set_values(negative, values)
    latent = torch.zeros((1, 16, blocks, height // 8, width // 8), device=intermediate_device())
    return positive, negative, latent


def ksample(model, latent, positive, negative, seed: int, steps: int, cfg: float,
            sampler_name: str, scheduler: str, denoise: float = 1.0):
    """ComfyUI's own sampling (what KSampler runs), with its progress bar, previews and Cancel."""
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    callback = latent_preview.prepare_callback(model, steps)
    return comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive,
                               negative, latent, denoise=denoise, callback=callback,
                               disable_pbar=True, seed=seed)


# ------------------------------------------------------------------------------ Stage II
def stage2_sigmas(model, scheduler: str, steps: int, denoise: float) -> torch.Tensor:
    """The model's own schedule (shift included); the tail of a longer one for denoise < 1."""
    ms = model.get_model_object("model_sampling")
    total = steps if denoise >= 1.0 else int(steps / denoise)
    return comfy.samplers.calculate_sigmas(ms, scheduler, total).cpu()[-(steps + 1):]


def process_latent_in(model, latent):
    return model.model.process_latent_in(latent)


def process_latent_out(model, latent):
    return model.model.process_latent_out(latent)


def prepare_noise(latent, seed: int):
    """ComfyUI's seeded noise for the whole latent (sliced per segment by swift_core)."""
    return comfy.sample.prepare_noise(latent, seed)


def _rope_encode(dm, t, h, w, device, dtype, transformer_options):
    if "transformer_options" in inspect.signature(dm.rope_encode).parameters:   # 0.8.0+
        return dm.rope_encode(t, h, w, device=device, dtype=dtype,
                              transformer_options=transformer_options)
    return dm.rope_encode(t, h, w, device=device, dtype=dtype)                  # 0.3.64


def _positions_wrapper(executor, x, timestep, context, clip_fea=None, time_dim_concat=None,
                       transformer_options={}, **kwargs):
    """DIFFUSION_MODEL wrapper: RoPE time positions of a gathered window (rope ``absolute``).

    A uniform shift cannot place the anchor at 0 and the segment at k..k+M, so the frequencies of
    the full video are computed and gathered at the window's true block indices.
    """
    positions = transformer_options.get(ROPE_KEY)
    dm = executor.class_obj
    if positions is None or time_dim_concat is not None:
        return executor(x, timestep, context, clip_fea, time_dim_concat, transformer_options,
                        **kwargs)
    bs, c, t, h, w = x.shape
    x = comfy.ldm.common_dit.pad_to_patch_size(x, dm.patch_size)
    full = int(positions.max()) + 1
    freqs = _rope_encode(dm, full, h, w, x.device, x.dtype, transformer_options)
    per_frame = freqs.shape[1] // full
    freqs = freqs.unflatten(1, (full, per_frame))[:, positions.to(freqs.device)].flatten(1, 2)
    return dm.forward_orig(x, timestep, context, clip_fea=clip_fea, freqs=freqs,
                           transformer_options=transformer_options, **kwargs)[:, :, :t, :h, :w]


class KModel:
    """What ComfyUI's k-diffusion samplers expect of a model: ``model(x, sigma, **extra)``."""

    def __init__(self, fn, base_model):
        self.fn = fn
        self.inner_model = type("Inner", (), {"inner_model": base_model})()

    def __call__(self, x, sigma, **_extra):
        return self.fn(x, sigma)


def comfy_sampler(sampler_name: str, seed: int, base_model) -> Callable:
    """A swift_core sampler running one of ComfyUI's samplers over a segment."""
    ks = comfy.samplers.sampler_object(sampler_name)      # every name KSampler lists

    def sampler(model, x, sigmas, callback=None):
        return ks.sampler_function(KModel(model, base_model), x, sigmas.to(x.device),
                                   extra_args={"seed": seed}, callback=callback, disable=True,
                                   **ks.extra_options)

    return sampler


def comfy_denoiser(model, positive, negative, cfg: float, seed: int, rope: str):
    """A CSG denoiser on ComfyUI's own model call, conditioning and CFG.

    Per-block timesteps go through WAN22's ``denoise_mask`` (timestep x mask per latent frame,
    so context blocks get 0); the window's reference goes in as ``concat_latent_image`` in raw
    VAE space, with exactly the window's latent frames.
    """
    base = model.model
    device = model.load_device
    model_options = comfy.model_patcher.create_model_options_clone(model.model_options)
    if rope == "absolute":
        pe.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "swifti2v_rope", _positions_wrapper,
                                model_options, is_model_options=True)
    pos_c = comfy.sampler_helpers.convert_cond(positive)
    neg_c = comfy.sampler_helpers.convert_cond(negative)
    last = {}   # the processed conds of the current window: they change only between segments

    def window_conds(x, sigma, reference):
        s = sigma.amax(dim=1)
        ratio = sigma / s[:, None]                    # 0 on context blocks, 1 on the segment's
        key = (tuple(x.shape), tuple(ratio.flatten().tolist()))
        if last.get("reference") is reference and last.get("key") == key:
            return last["conds"]
        mask = ratio[:, None, :, None, None].expand(x.shape[0], 1, *x.shape[2:]).contiguous()
        extra = {}
        if reference is not None:
            extra["concat_latent_image"] = base.process_latent_out(reference)
        conds = {"positive": [dict(c, **extra) for c in pos_c],
                 "negative": [dict(c, **extra) for c in neg_c]}
        conds = comfy.samplers.process_conds(base, x, conds, device, None, mask, seed)
        last.update(reference=reference, key=key, conds=conds)
        return conds

    def denoise(x, sigma, *, reference, positions):
        conds = window_conds(x, sigma, reference)
        s = sigma.amax(dim=1)
        opts = dict(model_options)
        opts["transformer_options"] = dict(model_options.get("transformer_options", {}))
        opts["transformer_options"][ROPE_KEY] = positions if rope == "absolute" else None
        return comfy.samplers.sampling_function(base, x, s, conds["negative"], conds["positive"],
                                                cfg, opts, seed)

    return denoise


def load_for_window(model, positive, negative, window_blocks: int, latent_h: int,
                    latent_w: int, cfg: float):
    """Load the Stage II model asking ComfyUI for ONE window's memory (swift_core's estimate)."""
    batch = 1 if math.isclose(cfg, 1.0) else 2
    need = window_activation_bytes(dit_config(model), window_blocks, latent_h, latent_w,
                                   batch=batch, dtype_bytes=mm.dtype_size(model.model_dtype()))
    conds = {"positive": comfy.sampler_helpers.convert_cond(positive),
             "negative": comfy.sampler_helpers.convert_cond(negative)}
    extra, inference = comfy.sampler_helpers.get_additional_models(conds, model.model_dtype())
    mm.load_models_gpu([model] + extra, memory_required=need + inference,
                       minimum_memory_required=need + inference)
    return extra


def release(extra_models) -> None:
    comfy.sampler_helpers.cleanup_additional_models(extra_models)


def run_on_model(model, fn):
    """ComfyUI's pre-run / cleanup around sampling, as its guider does."""
    model.pre_run()
    try:
        return fn()
    finally:
        model.cleanup()


def run_stage2(model, positive, negative, reference, anchor, *, seed: int, steps: int, cfg: float,
               sampler_name: str, scheduler: str, m: int, n: int, rope: str, mode: str,
               denoise: float, on_progress=None):
    """The CSG Stage II Sampler's work: raw VAE latents in, the raw 2K latent out.

    The noise is one seeded tensor for the whole latent; shapes are checked before the model is
    loaded, and the model is loaded for one window's memory. Block 0 of the result is ``anchor``.
    """
    blocks, lh, lw = reference.shape[2:]
    sigmas = stage2_sigmas(model, scheduler, steps, denoise if mode == "refine" else 1.0)
    noise = prepare_noise(reference, seed)
    as_input_error(check_inputs, noise, sigmas, anchor, reference, mode)
    extra = load_for_window(model, positive, negative, max_window_blocks(blocks, m, n), lh, lw,
                            cfg)
    device = model.load_device

    def run():
        return sample_csg(comfy_denoiser(model, positive, negative, cfg, seed, rope),
                          noise.to(device), sigmas.to(device),
                          anchor=process_latent_in(model, anchor.to(device)),
                          reference=process_latent_in(model, reference.to(device)),
                          m=m, n=n, mode=mode, rope=rope, callback=on_progress,
                          sampler=comfy_sampler(sampler_name, seed, model.model))

    try:
        out = run_on_model(model, run)
    finally:
        release(extra)
    out = process_latent_out(model, out).to(intermediate_device())
    out[:, :, :1] = anchor.to(out.device)       # block 0 is the anchor latent, bit for bit
    return out


# -------------------------------------------------------------------------------- output
class VideoFileWriter:
    """Writes an mp4 into ComfyUI's output folder as frames arrive, under a temporary name.

    ``close()`` renames it to the final name; ``abort()`` (or an exception) removes it, so a
    cancelled run leaves no file under the final name.
    """

    def __init__(self, filename_prefix: str, width: int, height: int, fps: float):
        import av  # PyAV ships with ComfyUI (its SaveVideo uses it)

        out_dir = folder_paths.get_output_directory()
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, out_dir, width, height)
        self.final_name = f"{name}_{counter:05}_.mp4"
        self.subfolder = subfolder
        self.final = os.path.join(folder, self.final_name)
        self.temp = os.path.join(folder, f".{self.final_name}.{uuid.uuid4().hex[:8]}.part")
        self.container = av.open(self.temp, mode="w", format="mp4")
        from fractions import Fraction
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "17"}
        self._av = av

    def write(self, frames: torch.Tensor) -> None:
        arr = (frames[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        for f in arr:
            for pkt in self.stream.encode(self._av.VideoFrame.from_ndarray(f, format="rgb24")):
                self.container.mux(pkt)

    def close(self) -> dict:
        for pkt in self.stream.encode():
            self.container.mux(pkt)
        self.container.close()
        os.replace(self.temp, self.final)
        return {"filename": self.final_name, "subfolder": self.subfolder, "type": "output",
                "format": "video/h264-mp4"}

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass
        if os.path.exists(self.temp):
            os.remove(self.temp)
