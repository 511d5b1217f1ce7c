"""SwiftI2V Seam Report: do the CSG segment boundaries show in a video (paper App. C.9/C.10)?"""
import json

from comfy_api.latest import io, ui

from ..swift_core.rules import check, check_m, check_n
from ..swift_core.seam_plot import plot
from ..swift_core.seams import CHUNK, seam_report
from .bridge import checks, context_windows, progress
from .bridge.video_read import iter_video
from .types import CATEGORY, validate


class SwiftI2VSeamReport(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VSeamReport",
            display_name="SwiftI2V Seam Report",
            category=CATEGORY,
            description="Measures whether the CSG segment boundaries show in a video: per-frame "
                        "pixel difference, luma and sharpness change, boundary pairs against the "
                        "others, and fidelity to the Stage I frames along the video; with the "
                        "Stage I model, the joins of its context windows too. The video is "
                        "read in chunks.",
            is_output_node=True,
            inputs=[
                io.Video.Input("video", optional=True,
                               tooltip="The video (e.g. the Stage II sampler's video output). "
                                       "Or connect images instead."),
                io.Image.Input("images", optional=True, tooltip="Frames instead of a video."),
                io.String.Input("plan", optional=True, force_input=True,
                                tooltip="The Stage II sampler's plan output: the segments as "
                                        "they ran (out-of-memory retries included). Without "
                                        "it, m and n below give the plan."),
                io.Int.Input("m", default=3, min=1, max=256,
                             tooltip="M the video was made with (when plan is not connected)."),
                io.Int.Input("n", default=1, min=0, max=64,
                             tooltip="N the video was made with (when plan is not connected)."),
                io.Image.Input("stage1", optional=True,
                               tooltip="Stage I frames (the motion reference): each segment's "
                                       "PSNR against them, downscaled (paper C.10)."),
                io.Model.Input("stage1_model", optional=True,
                               tooltip="The Stage I model as the Stage I Sampler got it, after "
                                       "core's Wan Context Windows: the report then measures "
                                       "where its context windows join too."),
            ],
            outputs=[io.Image.Output("plot", display_name="plot",
                                     tooltip="Curves per frame, segment boundaries in red."),
                     io.String.Output("report", display_name="report",
                                      tooltip="The summary as JSON: per metric the boundary and "
                                              "other pairs' means, their ratio, autocorrelation "
                                              "at the segment length; per-segment fidelity.")],
        )

    RULES = {"m": check_m, "n": check_n}

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    def execute(cls, m, n, video=None, images=None, plan=None, stage1=None,
                stage1_model=None) -> io.NodeOutput:
        check(video is not None or images is not None,
              "video / images: connect a VIDEO or IMAGE frames to report on")
        if images is not None and video is None:
            checks.check_image(images, "images")
        if stage1 is not None:
            checks.check_image(stage1, "stage1")
        chunks = iter_video(video) if video is not None else images.split(CHUNK)
        windows = None
        if stage1_model is not None and context_windows.handler(stage1_model) is not None:
            def windows(blocks):
                return context_windows.windows_of(stage1_model, blocks)
        summary = seam_report(chunks, plan, m, n, stage1=stage1,
                              each_chunk=progress.throw_if_interrupted, windows=windows)
        image = plot(summary)
        report = json.dumps(summary)
        shown = {**ui.PreviewImage(image, cls=cls).as_dict(), "text": [summary["verdict"]],
                 "swifti2v_seams": [report]}
        return io.NodeOutput(image, report, ui=shown)
