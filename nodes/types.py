"""Custom ComfyUI types of the pack, shared inputs, and the nodes' input validation."""
from comfy_api.latest import io

from ..swift_core import rules

CATEGORY = "SwiftI2V"

#: What the Stage Transition node tells the Sample Writer: s, k, seed, synthesized or not.
TransitionInfo = io.Custom("SWIFTI2V_TRANSITION")


def widget_rules(node_cls) -> dict:
    """``{input: rule}`` for a node's number bounds and combo options, read from its own schema."""
    found = {}
    for inp in node_cls.define_schema().inputs:
        options = getattr(inp, "options", None)
        lo, hi = getattr(inp, "min", None), getattr(inp, "max", None)
        if options is not None:
            found[inp.id] = lambda v, name, o=list(options): rules.check_option(v, name, o)
        elif lo is not None or hi is not None:
            found[inp.id] = lambda v, name, lo=lo, hi=hi: rules.check_bounds(v, name, lo, hi)
    return found


def check_inputs(node_cls, values: dict) -> None:
    """A node's own rules (``RULES``: input -> ``rule(value, name)``, and ``CROSS_RULES``: rules
    over several inputs, ``rule(values)``), then the widget rules of its schema. Inputs that are
    None (linked, so not known while ComfyUI validates the prompt) are skipped; the node checks
    them again when it runs."""
    rules.check_values(values, getattr(node_cls, "RULES", {}))
    for rule in getattr(node_cls, "CROSS_RULES", ()):
        rule(values)
    rules.check_values(values, widget_rules(node_cls))


def validate(node_cls, values: dict):
    """``validate_inputs(**kwargs)`` of a node: True, or :class:`rules.SwiftInputError` raised
    with the message of the first failing rule.

    A ``validate_inputs`` taking ``**kwargs`` receives every input and makes ComfyUI skip its own
    min/max and option checks (0.3.x never checks a V3 combo's options), so they are done here
    from the node's schema, not written a second time.

    Raised, not returned: ComfyUI (0.3.64 to 0.33 at least) files a returned message once per
    input the validator took, so one bad value showed as a dozen errors on the node. An exception
    in validation is filed once, on this node (``exception_during_inner_validation``, or
    ``exception_during_validation`` for an output node), its text the rule's message; the prompt
    is refused as before.
    """
    check_inputs(node_cls, values)
    return True


#: Rules of the inputs :func:`size_inputs` and :func:`tile_inputs` make.
SIZE_RULES = {"width": rules.check_size_input, "height": rules.check_size_input}
TILE_RULES = {"tile_size": rules.check_tile_px, "overlap": rules.check_tile_px}


def size_inputs():
    """Width / height inputs shared by the nodes that take a target size."""
    return [
        io.Int.Input("width", default=2560, min=0, max=8192, step=32,
                     tooltip="Target video width in pixels, a multiple of 32 (paper: 2560). "
                             "0 = the input image's width, snapped down to a multiple of 32."),
        io.Int.Input("height", default=1408, min=0, max=8192, step=32,
                     tooltip="Target video height in pixels, a multiple of 32 (paper: 1408). "
                             "0 = the input image's height, snapped down to a multiple of 32."),
        io.Combo.Input("crop", options=list(rules.CROP_MODES), default="center",
                       tooltip="center: trim the image to the target's aspect ratio W:H before "
                               "resizing (no stretching); disabled: stretch it. One rule for "
                               "every stage, so frame 0 is framed like the frames after it: use "
                               "the same setting on the Stage I Sampler and the Reference Builder."),
    ]


def tile_inputs(default_tile: int = 0, optional: bool = False):
    """Spatial VAE tiles in pixels, like core's VAE Decode (Tiled)."""
    return [
        io.Int.Input("tile_size", default=default_tile, min=0, max=8192, step=32, optional=optional,
                     tooltip="Spatial tile of the Wan 2.2 VAE in pixels (a multiple of 16). 0 = "
                             "auto: the largest tile that fits this card's free memory (the "
                             "whole frame when it fits); at least the frame's size = the whole "
                             "frame. Smaller tiles use less VRAM."),
        io.Int.Input("overlap", default=64, min=0, max=1024, step=16, optional=optional,
                     tooltip="Overlap of neighbouring tiles in pixels (a multiple of 16), "
                             "blended linearly."),
    ]


def sampling_inputs(default_steps: int = 4):
    from .bridge.csg import SAMPLER_NAMES, SCHEDULER_NAMES
    return [
        io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                     tooltip="Seed of the noise. The same seed gives the same video."),
        io.Int.Input("steps", default=default_steps, min=1, max=100,
                     tooltip="Denoising steps (4 with the few-step LoRA / SwiftI2V weights)."),
        io.Float.Input("cfg", default=1.0, min=0.0, max=30.0, step=0.1, round=0.01,
                       tooltip="Classifier-free guidance. 1.0 = no CFG (one model pass per step, "
                               "as in the paper); above 1 the negative prompt is used too."),
        io.Combo.Input("sampler_name", options=SAMPLER_NAMES, default="euler",
                       tooltip="ComfyUI sampler (Euler by default)."),
        io.Combo.Input("scheduler", options=SCHEDULER_NAMES, default="simple",
                       tooltip="ComfyUI scheduler; the model's own shift is applied."),
    ]


def clip_identity_inputs(name_tooltip: str):
    """The clip's video name and start (linked from Load Clips): its seed and kind come from them."""
    return [
        io.String.Input("name", default="clip", optional=True, tooltip=name_tooltip),
        io.Int.Input("start", default=0, min=0, max=1_000_000, optional=True,
                     tooltip="The clip's first frame in its video (link Load Clips' start)."),
    ]


def low_res_outputs(info_tooltip: str):
    """What makes a clip's low-res version (Stage Transition, Stage I Stand-in) hands on."""
    return [
        io.Image.Output("low_res", display_name="low_res",
                        tooltip="The Stage-I-like clip (W/4 x H/4)."),
        io.Int.Output("target_width", display_name="width", tooltip="The target width."),
        io.Int.Output("target_height", display_name="height", tooltip="The target height."),
        TransitionInfo.Output("info", display_name="info", tooltip=info_tooltip),
    ]
