"""Progress bar, previews and Cancel, the way ComfyUI's own samplers report them."""
from __future__ import annotations

import comfy.model_management as mm
import comfy.utils
import latent_preview


def progress_bar(total: int):
    """ComfyUI's progress bar; each update also raises if the user pressed Cancel."""
    return comfy.utils.ProgressBar(total)


def previewer(model):
    """ComfyUI's latent previewer for this model (None when previews are off)."""
    return latent_preview.get_previewer(model.load_device, model.model.latent_format)


def preview_image(prev, x0):
    """A preview of the last latent frame of ``x0`` [B, C, T, H, W] for the progress bar."""
    if prev is None or x0 is None:
        return None
    return prev.decode_latent_to_preview_image("JPEG", x0[:, :, -1:])


class SegmentProgress:
    """ComfyUI's progress bar over a CSG run: ``steps`` ticks a segment, each step with a preview
    of the latent being denoised, each finished segment with its last decoded frame."""

    def __init__(self, model, steps: int, plan):
        self.steps, self.bar, self.prev = steps, progress_bar(len(plan) * steps), previewer(model)

    def step(self, seg, step: int, x0) -> None:
        self.bar.update_absolute(seg.index * self.steps + step, None,
                                 preview_image(self.prev, x0))

    def segment_done(self, seg, preview) -> None:
        """A finished segment's decoded frame as the preview (no tick of its own: its last step
        ticked already)."""
        if preview is not None:
            self.bar.update_absolute((seg.index + 1) * self.steps, None, preview)

    def replanned(self, plan) -> None:
        """An out-of-memory retry changed the plan: the bar's total follows it."""
        self.bar.total = len(plan) * self.steps


def throw_if_interrupted() -> None:
    mm.throw_exception_if_processing_interrupted()


def intermediate_device():
    return mm.intermediate_device()
