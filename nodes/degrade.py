"""SwiftI2V Stage I Stand-in: a Stage-I-like low-res clip without a Stage I model
(swift_core.degrade), in place of the Stage Transition."""
from comfy_api.latest import io

from ..swift_core import size_from_image
from ..swift_core.degrade import degrade_clip
from ..swift_core.reference import stage1_image
from ..swift_core.transition import clip_seed, clip_synthesized
from .bridge import checks, run_card
from .types import (CATEGORY, SIZE_RULES, clip_identity_inputs, low_res_outputs,
                    size_inputs, validate)


class SwiftI2VStage1StandIn(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VStage1StandIn",
            display_name="SwiftI2V Stage I Stand-in (training data, no Stage I)",
            category=f"{CATEGORY}/training",
            description="For training data made without a Stage I model: the clip trimmed to "
                        "W:H and downsampled to Stage I's size (bicubic), then degraded the way "
                        "Stage I degrades it: blurred (lost detail), with residual noise and a "
                        "brightness flicker per frame. Wire it where the Stage Transition goes.",
            inputs=[
                io.Image.Input("clip", tooltip="The ground-truth clip, 4k+1 frames (Load Clips)."),
                *size_inputs(),
                io.Int.Input("blur", default=1, min=0, max=16,
                             tooltip="Passes of the 3x3 binomial filter (lost detail; each a "
                                     "Gaussian of variance 0.5 px^2 at Stage I's size). 0 = none."),
                io.Float.Input("noise", default=0.3, min=0.0, max=1.0, step=0.01,
                               tooltip="Standard deviation of the residual noise (pixel values "
                                       "in 0..1), new in every frame."),
                io.Float.Input("flicker", default=0.4, min=0.0, max=1.0, step=0.01,
                               tooltip="Standard deviation of a brightness gain per frame."),
                io.Float.Input("synthesize_fraction", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="Share of clips degraded; the others are plain bicubic "
                                       "downsamples. Each clip's kind is drawn from its video "
                                       "name and start: stable across runs."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                             tooltip="Seed of the degradation; each clip draws its own from it, "
                                     "its video name and start."),
                *clip_identity_inputs("The clip's video name (link Load Clips' name)."),
            ],
            outputs=low_res_outputs("The clip's seed and kind, for the Sample Writer."),
        )

    RULES = SIZE_RULES

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    @run_card.measured("stage1_stand_in")
    def execute(cls, clip, width, height, crop, blur, noise, flicker, synthesize_fraction, seed,
                name="clip", start=0) -> io.NodeOutput:
        checks.check_image(clip, "clip")
        size = size_from_image(clip.shape[2], clip.shape[1], width, height, clip.shape[0],
                               "clip frame count")
        small = stage1_image(clip[..., :3], size.width, size.height, crop=crop)
        synthesized = clip_synthesized(synthesize_fraction, name, start)
        if synthesized:
            small = degrade_clip(small, seed, name, start, blur=blur, noise=noise,
                                 flicker=flicker)
        return io.NodeOutput(small, size.width, size.height, {
            "strength": 0.0, "start_sigma": 0.0, "strength_reading": "stand_in", "steps": 0,
            "seed": clip_seed(seed, name, start), "synthesized": synthesized})
