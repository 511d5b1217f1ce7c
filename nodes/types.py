"""Custom ComfyUI types of the pack."""
from comfy_api.latest import io

from ..swift_core.sizes import check_bounds

#: dict(reference=[1,48,T',H',W'] raw VAE latent, anchor=[1,48,1,H',W'], width, height, frames)
SwiftReference = io.Custom("SWIFTI2V_REFERENCE")

CATEGORY = "SwiftI2V"


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


def widget_limits(node_cls) -> dict:
    """``{input: (min, max)}`` of a node's number widgets, read from its own schema."""
    limits = {}
    for inp in node_cls.define_schema().inputs:
        lo, hi = getattr(inp, "min", None), getattr(inp, "max", None)
        if lo is not None or hi is not None:
            limits[inp.id] = (lo, hi)
    return limits


def validate(node_cls, values: dict, *checks):
    """``validate_inputs`` of a node: its rules, then the widget bounds of every input it takes.

    ComfyUI skips its own min/max checks for the inputs a node's ``validate_inputs`` takes, so
    they are restored here from the node's schema, not written a second time.
    """
    limits = widget_limits(node_cls)
    bounds = [(check_bounds, value, name, *limits[name]) for name, value in values.items()
              if name in limits]
    return first_error(*checks, *bounds)


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
                       tooltip="center: trim the image to the target's aspect ratio before "
                               "resizing (no stretching); disabled: stretch it. Use the same "
                               "setting on the Stage I Sampler and the Hybrid Reference Builder."),
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
