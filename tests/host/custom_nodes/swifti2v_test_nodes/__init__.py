"""Test-only ComfyUI nodes for the host tests (never shipped with the pack).

A full-size umt5-xxl costs minutes per prompt on a CPU, so conditioning comes from a seeded random
tensor of the real shape; tensors the tests must inspect are saved as safetensors in the output
folder.
"""
import os

import comfy.ldm.common_dit
import comfy.patcher_extension as pe
import comfy.sample
import comfy.samplers
import folder_paths
import torch
from safetensors.torch import save_file

# the pack's plain-torch library, a top-level package on the server's PYTHONPATH (pack_env)
from swift_core import sample_csg  # noqa: E402

RECORDS: dict[str, list] = {}


class SwiftTestConditioning:
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 2**31})},
                "optional": {"text": ("STRING", {"default": ""})}}

    def make(self, seed, text=""):
        import zlib
        g = torch.Generator().manual_seed(seed + zlib.crc32(text.encode()))
        return ([[torch.randn(1, 512, 4096, generator=g), {}]],)


class SwiftTestSaveTensors:
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": ("STRING", {"default": "tensors"})},
                "optional": {"reference": ("LATENT",), "latent": ("LATENT",),
                             "latent_b": ("LATENT",), "latent_c": ("LATENT",),
                             "images": ("IMAGE",), "images_b": ("IMAGE",)}}

    def save(self, name, reference=None, latent=None, latent_b=None, latent_c=None, images=None,
             images_b=None):
        out = {}
        for key, value in (("latent_b", latent_b), ("latent_c", latent_c)):
            if value is not None:
                out[key] = value["samples"]
        if reference is not None:
            out["reference"] = reference["samples"]
            out["anchor"] = reference["samples"][:, :, :1]
        if latent is not None:
            out["latent"] = latent["samples"]
        if images is not None:
            out["images"] = images
        if images_b is not None:
            out["images_b"] = images_b
        _save(name, out)
        return {}


class SwiftTestImage:
    """An IMAGE batch of any size and frame count (0 frames: an empty batch)."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"frames": ("INT", {"default": 0, "min": 0, "max": 1025}),
                             "width": ("INT", {"default": 64, "min": 1, "max": 8192}),
                             "height": ("INT", {"default": 64, "min": 1, "max": 8192})}}

    def make(self, frames, width, height):
        g = torch.Generator().manual_seed(frames * 7919 + width * 31 + height)
        return (torch.rand(frames, height, width, 3, generator=g),)


def _save(name, tensors):
    folder = os.path.join(folder_paths.get_output_directory(), "swifti2v_test")
    os.makedirs(folder, exist_ok=True)
    save_file({k: v.float().contiguous().cpu() for k, v in tensors.items()},
              os.path.join(folder, f"{name}.safetensors"))


class SwiftTestRecordModel:
    """MODEL -> MODEL that records what its diffusion model receives: the noisy latent channels
    (the first ``out_dim``) and the per-frame timesteps, call by call."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "tag": ("STRING", {"default": "rec"})}}

    def patch(self, model, tag):
        RECORDS[tag] = []
        out_dim = model.model.diffusion_model.out_dim

        def record(executor, x, timestep, *args, **kwargs):
            RECORDS[tag].append((x[:, :out_dim].detach().float().cpu().clone(),
                                 timestep.detach().float().cpu().reshape(x.shape[0], -1).clone()))
            return executor(x, timestep, *args, **kwargs)

        m = model.clone()
        m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "swifti2v_test_record", record)
        return (m,)


class SwiftTestSaveRecords:
    """Saves the records of ``tag`` and the model-space (process_latent_in) final latent."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "latent": ("LATENT",),
                             "tag": ("STRING", {"default": "rec"})}}

    def save(self, model, latent, tag):
        out = {"final_in": model.model.process_latent_in(latent["samples"].float())}
        for i, (x, t) in enumerate(RECORDS.get(tag, [])):
            out[f"x_{i:03d}"], out[f"t_{i:03d}"] = x, t
        _save(tag, out)
        return {}


SIGMAS: dict[str, list] = {}


class SwiftTestRecordSigmas:
    """MODEL -> MODEL whose sampling only records the sigmas core's sampler would be given (an
    OUTER_SAMPLE wrapper that returns the latent unsampled): the schedule every window of a
    sampler node really runs, at no sampling cost."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "tag": ("STRING", {"default": "sig"})}}

    def patch(self, model, tag):
        SIGMAS[tag] = []

        def record(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
            SIGMAS[tag].append(sigmas.detach().double().cpu().tolist())
            return latent_image

        m = model.clone()
        m.add_wrapper_with_key(pe.WrappersMP.OUTER_SAMPLE, "swifti2v_test_sigmas", record)
        return (m,)


class SwiftTestCompareSigmas:
    """The sigmas recorded under ``tag`` beside those core's KSampler computes for ``model``,
    sampler, scheduler, steps and denoise (what KSampler / KSamplerAdvanced run), as UI output."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ()
    FUNCTION = "compare"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",), "latent": ("LATENT",), "tag": ("STRING", {"default": "sig"}),
            "sampler_name": (comfy.samplers.KSampler.SAMPLERS,),
            "scheduler": (comfy.samplers.KSampler.SCHEDULERS,),
            "steps": ("INT", {"default": 3, "min": 1, "max": 100}),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0})}}

    def compare(self, model, latent, tag, sampler_name, scheduler, steps, denoise):
        core = comfy.samplers.KSampler(model, steps=steps, device="cpu", sampler=sampler_name,
                                       scheduler=scheduler, denoise=denoise,
                                       model_options=model.model_options).sigmas
        return {"ui": {"sigmas": [{"tag": tag, "seen": SIGMAS.get(tag, []),
                                   "core": core.double().cpu().tolist()}]}}


class SwiftTestChangeVAEProtocol:
    """A copy of a Wan 2.2 VAE whose encoder and decoder take another forward signature (as a
    rewrite of core's cache protocol would: a ``final`` flag), still computing the same through
    core's own calls. The original VAE is left as it was."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("VAE",)
    FUNCTION = "change"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("VAE",)}}

    def change(self, vae):
        import copy
        new = copy.copy(vae)
        net = copy.copy(vae.first_stage_model)
        net._modules = dict(net._modules)
        for part in ("encoder", "decoder"):
            module = copy.copy(getattr(net, part))
            orig = type(module).forward

            def forward(x, feat_cache=None, feat_idx=[0], final=False, _m=module, _f=orig, **kw):
                return _f(_m, x, feat_cache, feat_idx, **kw)

            module.forward = forward
            setattr(net, part, module)
        new.first_stage_model = net
        return (new,)


def vae_with_decoder_hook(vae, before, part="decoder"):
    """A copy of ``vae`` whose decoder (or encoder: ``part``) calls ``before(*args)`` ahead of
    each forward; the original VAE (and other graphs using it) is untouched. Signature and
    results are the module's own."""
    import copy
    import functools
    new = copy.copy(vae)
    net = copy.copy(vae.first_stage_model)
    net._modules = dict(net._modules)
    module = copy.copy(getattr(net, part))
    orig = module.forward

    @functools.wraps(orig)
    def forward(*args, **kwargs):
        before(*args)
        return orig(*args, **kwargs)

    module.forward = forward
    setattr(net, part, module)
    new.first_stage_model = net
    return new


class SwiftTestHoldVAE:
    """A copy of a VAE whose decoder, from its ``after``-th call on, waits while the file ``hold``
    exists: a test holds a run with part of its video on disk, then lets it finish. Signature and
    results are the decoder's own."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("VAE",)
    FUNCTION = "hold"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("VAE",), "hold": ("STRING", {"default": ""}),
                             "after": ("INT", {"default": 2, "min": 0, "max": 10_000})}}

    @classmethod
    def IS_CHANGED(cls, **_):
        return float("nan")                 # a fresh copy (and call count) every run

    def hold(self, vae, hold, after):
        import time
        calls = [0]

        def before(*args):
            calls[0] += 1
            while calls[0] > after and os.path.exists(hold):
                time.sleep(0.05)

        return (vae_with_decoder_hook(vae, before),)


class SwiftTestOOMAbove:
    """MODEL -> MODEL whose diffusion model raises torch's out-of-memory error for a window of
    more than ``max_blocks`` latent blocks (as a card too small for it would)."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "max_blocks": ("INT", {"default": 3, "min": 1, "max": 100})}}

    def patch(self, model, max_blocks):
        def limit(executor, x, *args, **kwargs):
            if x.shape[2] > max_blocks:
                big = torch.full((64 << 20,), 1.0)   # 256 MB, touched: the failed window's memory
                raise torch.OutOfMemoryError(f"test: a window of {x.shape[2]} blocks "
                                             f"({big.numel()} floats)")
            return executor(x, *args, **kwargs)

        m = model.clone()
        m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "swifti2v_test_oom", limit)
        return (m,)


class SwiftTestOOMVAE:
    """A copy of a VAE whose decoder (or encoder: ``part``) raises torch's out-of-memory error on
    a tile wider than ``max_latent`` latent units (the encoder's input is in 2x2 patches of
    pixels: 2 px a unit)."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("VAE",)
    FUNCTION = "limit"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("VAE",),
                             "max_latent": ("INT", {"default": 16, "min": 1, "max": 10_000})},
                "optional": {"part": (["decoder", "encoder"], {"default": "decoder"})}}

    @classmethod
    def IS_CHANGED(cls, **_):
        return float("nan")

    def limit(self, vae, max_latent, part="decoder"):
        def before(x, *args):
            if max(x.shape[-2:]) > max_latent:
                raise torch.OutOfMemoryError(f"test: a {part} tile of {tuple(x.shape[-2:])}")

        return (vae_with_decoder_hook(vae, before, part),)


def direct_denoiser(model, context):
    """A swift_core denoiser that calls ComfyUI's Wan diffusion model directly: per-frame
    timesteps, the reference concatenated, RoPE positions gathered from the model's own
    frequencies; no ComfyUI sampling code in between."""
    base = model.model
    dm, ms = base.diffusion_model, base.model_sampling

    def denoise(x, sigma, *, reference, positions):
        xin = x if reference is None else torch.cat([x, reference], dim=1)
        t, h, w = x.shape[2:]
        xp = comfy.ldm.common_dit.pad_to_patch_size(xin, dm.patch_size)
        full = int(positions.max()) + 1
        freqs = dm.rope_encode(full, h, w, device=x.device, dtype=x.dtype)
        freqs = freqs.unflatten(1, (full, -1))[:, positions.to(freqs.device)].flatten(1, 2)
        v = dm.forward_orig(xp, ms.timestep(sigma).float(), context, freqs=freqs,
                            transformer_options={})[:, :, :t, :h, :w]
        return x - v * sigma[:, None, :, None, None]

    return denoise


class SwiftTestReferenceCSG:
    """swift_core.sample_csg (plain torch, Euler) over ``direct_denoiser``: the oracle the
    ComfyUI path of the CSG Stage II Sampler must agree with."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",), "positive": ("CONDITIONING",), "reference": ("LATENT",),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**31}),
            "steps": ("INT", {"default": 2, "min": 1, "max": 100}),
            "m": ("INT", {"default": 1, "min": 1, "max": 64}),
            "n": ("INT", {"default": 1, "min": 0, "max": 64}),
            "rope": (["window", "absolute"],), "mode": (["swifti2v", "refine"],),
            "denoise": ("FLOAT", {"default": 0.6, "min": 0.01, "max": 1.0})}}

    def run(self, model, positive, reference, seed, steps, m, n, rope, mode, denoise):
        base = model.model
        ref = reference["samples"].float()
        anchor = ref[:, :, :1]
        sigmas = comfy.samplers.KSampler(model, steps=steps, device="cpu", sampler="euler",
                                         scheduler="simple",
                                         denoise=denoise if mode == "refine" else 1.0).sigmas
        noise = comfy.sample.prepare_noise(ref, seed)
        context = positive[0][0].float()
        with torch.no_grad():
            out = sample_csg(direct_denoiser(model, context), noise, sigmas.float(),
                             anchor=base.process_latent_in(anchor),
                             reference=base.process_latent_in(ref), m=m, n=n, mode=mode,
                             rope=rope)
        return ({"samples": base.process_latent_out(out)},)


class SwiftTestTrimHeap:
    """Returns the C allocator's free memory to the system (glibc ``malloc_trim``), so that the
    next run's allocations show in the process's resident memory instead of reusing freed pages
    that are still resident. ``run``: any new number runs it again (ComfyUI's cache)."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ()
    FUNCTION = "trim"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"run": ("INT", {"default": 0, "min": 0, "max": 2 ** 31})}}

    def trim(self, run):
        import ctypes
        import gc
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return {}


class SwiftTestLoadSample:
    """A Stage II training sample (swift_core.samples) as the Stage II Sampler takes it: its
    reference as a raw Wan 2.2 LATENT (the file holds the DiT's space: ``process_out``) and its
    text context as the CONDITIONING."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("LATENT", "CONDITIONING")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"path": ("STRING", {"default": ""})}}

    def load(self, path):
        import comfy.latent_formats
        from swift_core.samples import read_sample
        s = read_sample(path)
        ref = comfy.latent_formats.Wan22().process_out(s.reference.float()[None])
        return ({"samples": ref}, [[s.context.float()[None], {}]])


class SwiftTestSaveDitLatent:
    """Saves a Wan 2.2 LATENT in the DiT's space (``process_in``), the space of the samples."""
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": ("LATENT",), "name": ("STRING", {"default": "latent"})}}

    def save(self, latent, name):
        import comfy.latent_formats
        _save(name, {"latent": comfy.latent_formats.Wan22().process_in(latent["samples"].float())})
        return {}


NODE_CLASS_MAPPINGS = {"SwiftTestLoadSample": SwiftTestLoadSample,
                       "SwiftTestSaveDitLatent": SwiftTestSaveDitLatent,
                       "SwiftTestChangeVAEProtocol": SwiftTestChangeVAEProtocol,
                       "SwiftTestTrimHeap": SwiftTestTrimHeap,
                       "SwiftTestHoldVAE": SwiftTestHoldVAE,
                       "SwiftTestOOMAbove": SwiftTestOOMAbove,
                       "SwiftTestOOMVAE": SwiftTestOOMVAE,
                       "SwiftTestRecordModel": SwiftTestRecordModel,
                       "SwiftTestRecordSigmas": SwiftTestRecordSigmas,
                       "SwiftTestCompareSigmas": SwiftTestCompareSigmas,
                       "SwiftTestSaveRecords": SwiftTestSaveRecords,
                       "SwiftTestReferenceCSG": SwiftTestReferenceCSG,
                       "SwiftTestConditioning": SwiftTestConditioning,
                       "SwiftTestSaveTensors": SwiftTestSaveTensors,
                       "SwiftTestImage": SwiftTestImage}
