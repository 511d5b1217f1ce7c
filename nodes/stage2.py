"""SwiftI2V CSG Stage II Sampler: 2K re-synthesis, segment by segment (paper Sec. 3.2)."""
from comfy_api.latest import io

from ..swift_core import block_frame_range, plan_segments
from ..swift_core.plan import describe_plan
from ..swift_core.rules import (COLOR_MATCH, MODE_CHOICES, ROPE_MODES, WAN22_SPATIAL,
                                check_denoise, check_m_input, check_n)
from .bridge import auto_fit, checks, csg, fits, oom, progress, streaming
from .types import CATEGORY, TILE_RULES, sampling_inputs, tile_inputs, validate


#: Why there is no VIDEO without the vae input (never a None handed to core's video nodes).
NO_VAE_VIDEO = ("vae: the video output needs the vae input (the Wan 2.2 VAE, "
                "wan2.2_vae.safetensors) connected; connect it, or use the latent output only")


def fit_to_device(model, vae, latent_shape, m: int, n: int, cfg: float, tile_size: int,
                  overlap: int):
    """``m`` and ``tile_size`` with auto (0) chosen for the device, before any work: (m,
    tile_size, {input: why}). An explicit ``m`` is checked against the device instead."""
    chosen = {}
    if m == 0:
        resident = [model] + ([vae.patcher] if vae is not None else [])
        m, chosen["m"] = auto_fit.resolve(auto_fit.auto_m(model, latent_shape, n, cfg, resident))
    else:
        fits.check_window_fits(model, latent_shape, m, n, cfg)
    if vae is not None:
        h, w = (d * WAN22_SPATIAL for d in latent_shape[3:])
        tile_size, why = auto_fit.tile_for(vae, tile_size, h, w, overlap, decode=True,
                                       resident=[model])
        if why is not None:
            chosen["tile_size"] = why
    return m, tile_size, chosen


class SwiftI2VStage2Sampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VStage2Sampler",
            display_name="SwiftI2V CSG Stage II Sampler",
            category=CATEGORY,
            description="Stage II with Conditional Segment-wise Generation: each segment of M latent "
                        "blocks is denoised inside a window with the anchor block and N previous "
                        "blocks, then final. Memory is that of one window, not of the video.",
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
            inputs=[
                io.Model.Input("model", tooltip="Stage II model: Wan2.2-TI2V-5B (48 input channels: "
                                                "refine mode) or SwiftI2V Stage II weights "
                                                "(96 channels: swifti2v mode)."),
                io.Conditioning.Input("positive", tooltip="Prompt (umt5 text encoder)."),
                io.Conditioning.Input("negative", tooltip="Negative prompt (used when cfg > 1)."),
                io.Latent.Input("reference", tooltip="From the Hybrid Reference Builder (or Load "
                                                     "Latent of one saved with Save Latent): a "
                                                     "Wan 2.2 latent whose block 0 is the anchor."),
                *sampling_inputs(),
                io.Int.Input("m", default=0, min=0, max=256,
                             tooltip="M: latent blocks denoised per segment (paper: 3). 0 = auto: "
                                     "the largest M up to 3 that fits this card's free memory. "
                                     "Larger needs more memory; M >= blocks-1 disables CSG."),
                io.Int.Input("n", default=1, min=0, max=64,
                             tooltip="N: previous blocks kept as read-only context (paper: 1)."),
                io.Combo.Input("rope", options=list(ROPE_MODES), default="window",
                               tooltip="RoPE time positions of a window: 'window' = 0..w-1 as if "
                                       "contiguous; 'absolute' = each block's index in the video. "
                                       "Must match how the Stage II weights were trained."),
                io.Combo.Input("mode", options=list(MODE_CHOICES), default="auto",
                               tooltip="auto: from the model's input channels (96 -> swifti2v, "
                                       "48 -> refine). refine is training-free on the public "
                                       "Wan2.2-TI2V-5B: each segment starts from the reference "
                                       "noised to 'denoise'."),
                io.Float.Input("denoise", default=0.6, min=0.0, max=1.0, step=0.01,
                               tooltip="refine mode only: how much of the reference is re-made "
                                       "(0 < denoise <= 1; 1 = from pure noise)."),
                io.Vae.Input("vae", optional=True,
                             tooltip="Stage II VAE (wan2.2_vae.safetensors). Connected: each "
                                     "segment is decoded as soon as it is final and appended to "
                                     "the video (the VIDEO output: connect it to Save Video)."),
                io.Float.Input("frame_rate", default=16.0, min=1.0, max=120.0, step=1.0,
                               optional=True, tooltip="Frames per second of the VIDEO (Wan: 16)."),
                *tile_inputs(optional=True),
                io.Combo.Input("color_match", options=list(COLOR_MATCH), default="off",
                               optional=True,
                               tooltip="lab: give every frame the colour statistics (L*a*b* mean "
                                       "and spread) of frame 0, your image, against the colour "
                                       "drift of Wan 2.2 TI2V 5B."),
            ],
            outputs=[io.Latent.Output("latent", display_name="latent",
                                      tooltip="The 2K latent (ComfyUI's VAE Decode accepts it too)."),
                     io.Video.Output("video", display_name="video",
                                     tooltip="The video, written while Stage II runs (needs the "
                                             "vae input): connect it to core's Save Video."),
                     io.String.Output("plan", display_name="plan",
                                      tooltip="The plan that ran, as JSON: m, n, the segments, "
                                              "what auto chose and why, and any out-of-memory "
                                              "retry (the Seam Report reads it).")],
        )

    RULES = TILE_RULES | {"m": check_m_input, "n": check_n}
    CROSS_RULES = (lambda v: check_denoise(v.get("denoise"), v.get("mode")),)

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    def execute(cls, model, positive, negative, reference, seed, steps, cfg, sampler_name,
                scheduler, m, n, rope, mode, denoise, vae=None, frame_rate=16.0, tile_size=0,
                overlap=64, color_match="off") -> io.NodeOutput:
        ref = checks.reference_latent(reference)
        anchor = ref[:, :, :1]
        mode = checks.resolve_mode(model, mode)
        check_denoise(denoise, mode)
        if vae is not None:
            checks.check_stage2_vae(vae)
        else:                       # a VIDEO consumer needs the vae: refused before any work
            checks.check(not checks.output_used(cls.hidden.prompt, cls.hidden.unique_id, 1),
                         NO_VAE_VIDEO)
        m, tile_size, chosen = fit_to_device(model, vae, ref.shape, m, n, cfg, tile_size, overlap)
        plan = plan_segments(ref.shape[2], m, n)
        pbar = progress.progress_bar(len(plan) * steps)
        retry = oom.WindowRetry(n, on_replan=lambda new: setattr(pbar, "total", len(new) * steps))
        prev = progress.previewer(model)

        def on_step(seg, step, x0):
            pbar.update_absolute(seg.index * steps + step, None,
                                 progress.preview_image(prev, x0))

        stream = None
        if vae is not None:         # decode each segment as soon as it is final
            stream = streaming.SegmentStreamer(vae, ref.shape[3], ref.shape[4], frame_rate,
                                               block_frame_range(ref.shape[2] - 1)[1],
                                               tile_px=tile_size, overlap_px=overlap,
                                               color_match=color_match,
                                               name="swifti2v_stage2", with_models=[model])

        def on_segment(seg, blocks):
            stream.add(blocks)
            pbar.update_absolute((seg.index + 1) * steps, None, stream.preview())

        try:
            if stream is not None:
                stream.add(anchor)                        # frame 0: your image
            out = csg.run_stage2(model, positive, negative, ref, anchor, seed=seed, steps=steps,
                                 cfg=cfg, sampler_name=sampler_name, scheduler=scheduler, m=m,
                                 n=n, rope=rope, mode=mode, denoise=denoise, on_step=on_step,
                                 on_segment=on_segment if stream is not None else None,
                                 retry=retry)
            video = stream.finish() if stream is not None else checks.blocked(NO_VAE_VIDEO)
        except BaseException:
            if stream is not None:
                stream.abort()
            raise
        info = describe_plan(retry.plan or plan, m=m, n=n, chosen=chosen,
                             tile_size=tile_size if vae is not None else None,
                             changes=retry.changes + (stream.changes if stream is not None else []))
        return io.NodeOutput({"samples": out.to(progress.intermediate_device())}, video, info,
                             ui={"swifti2v_plan": [info]})
