"""SwiftI2V CSG Stage II Sampler: 2K re-synthesis, segment by segment (paper Sec. 3.2)."""
from comfy_api.latest import io

from ..swift_core.rules import (COLOR_MATCH, MODE_CHOICES, ROPE_MODES, check_denoise,
                                check_m_input, check_n)
from .bridge import checks, run_card, running_prompt, stage2_run
from .types import CATEGORY, TILE_RULES, sampling_inputs, tile_inputs, validate


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
                                              "retry (the Seam Report reads it)."),
                     io.String.Output("run_card", display_name="run_card",
                                      tooltip="What this run cost so far, as JSON: each SwiftI2V "
                                              "stage's time and peak memory, the plan, the "
                                              "versions and the device (docs/performance.md). "
                                              "Save Video writes it beside the video too.")],
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
        settings = stage2_run.Stage2Settings(
            seed=seed, steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler, m=m,
            n=n, rope=rope, mode=mode, denoise=denoise, frame_rate=frame_rate,
            tile_size=tile_size, overlap=overlap, color_match=color_match)
        with run_card.stage("stage2"):
            latent, video, plan = stage2_run.stage2(
                model, positive, negative, checks.reference_latent(reference), vae, settings,
                video_wanted=running_prompt.output_consumed(1) is True)
        card = run_card.text()
        return io.NodeOutput({"samples": latent}, video, plan, card,
                             ui={"swifti2v_plan": [plan], "swifti2v_card": [card]})
