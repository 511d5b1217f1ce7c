"""Custom ComfyUI types of the pack."""
from comfy_api.latest import io

from ..swift_core.sizes import check_bounds

CATEGORY = "SwiftI2V"

#: What the Stage Transition node tells the Sample Writer: s, k, seed, synthesized or not.
TransitionInfo = io.Custom("SWIFTI2V_TRANSITION")


def first_error(*checks):
    """For ``validate_inputs``: True, or the message of the first failing check.

    Each check is ``(fn, value, *args)``; a value that is None (a linked input, not known while
    ComfyUI validates the prompt) is skipped and checked again when the node runs.
    """
    for fn, value, *args in checks:
        if value is None:
            continue
        try:
            fn(value, *args)
        except ValueError as e:
            return str(e)
    return True


def check_option(value, name: str, options) -> None:
    if value not in options:
        shown = ", ".join(map(str, list(options)[:12])) + (", ..." if len(options) > 12 else "")
        raise ValueError(f"{name}={value!r}: must be one of {shown}")


def widget_rules(node_cls) -> dict:
    """``{input: (check, *args)}`` for a node's number bounds and combo options, read from its
    own schema."""
    rules = {}
    for inp in node_cls.define_schema().inputs:
        options = getattr(inp, "options", None)
        lo, hi = getattr(inp, "min", None), getattr(inp, "max", None)
        if options is not None:
            rules[inp.id] = (check_option, list(options))
        elif lo is not None or hi is not None:
            rules[inp.id] = (check_bounds, lo, hi)
    return rules


def validate(node_cls, values: dict, *checks):
    """``validate_inputs`` of a node: its rules, then the widget rules of every input it takes.

    ComfyUI skips its own min/max and option checks for the inputs a node's ``validate_inputs``
    takes (and 0.3.x never checks a V3 combo's options), so they are done here from the node's
    schema, not written a second time.
    """
    rules = widget_rules(node_cls)
    widget_checks = [(rules[name][0], value, name, *rules[name][1:])
                     for name, value in values.items() if name in rules]
    return first_error(*checks, *widget_checks)


def size_inputs():
    """Width / height inputs shared by the nodes that take a target size."""
    return [
        io.Int.Input("width", default=2560, min=0, max=8192, step=32,
                     tooltip="Target video width in pixels, a multiple of 32 (paper: 2560). "
                             "0 = the input image's width, snapped down to a multiple of 32."),
        io.Int.Input("height", default=1408, min=0, max=8192, step=32,
                     tooltip="Target video height in pixels, a multiple of 32 (paper: 1408). "
                             "0 = the input image's height, snapped down to a multiple of 32."),
        io.Combo.Input("crop", options=["center", "disabled"], default="center",
                       tooltip="center: trim the image to the target's aspect ratio W:H before "
                               "resizing (no stretching); disabled: stretch it. One rule for "
                               "every stage, so frame 0 is framed like the frames after it: use "
                               "the same setting on the Stage I Sampler and the Reference Builder."),
    ]


def tile_inputs(default_tile: int = 1024, optional: bool = False):
    """Spatial VAE tiles in pixels, like core's VAE Decode (Tiled)."""
    return [
        io.Int.Input("tile_size", default=default_tile, min=0, max=8192, step=32, optional=optional,
                     tooltip="Spatial tile of the Wan 2.2 VAE in pixels (a multiple of 16; 0 = "
                             "whole frame). Smaller tiles use less VRAM."),
        io.Int.Input("overlap", default=64, min=0, max=1024, step=16, optional=optional,
                     tooltip="Overlap of neighbouring tiles in pixels (a multiple of 16), "
                             "blended linearly."),
    ]


def check_tile_px(value: int, name: str) -> int:
    """Tile sizes and overlaps are whole latent units: multiples of 16 px (0 allowed)."""
    if value % 16:
        lo = value // 16 * 16
        raise ValueError(f"{name}={value}: must be a multiple of 16 pixels (one latent unit of the "
                         f"Wan 2.2 VAE), e.g. {lo} or {lo + 16}")
    return value


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
