"""SwiftI2V Load Clips: clips of 4k+1 frames cut from a video in ComfyUI's input folder."""
import os
import re

from comfy_api.latest import io

from ..swift_core import check_frames
from ..swift_core.memory import frames_bytes
from ..swift_core.transition import clip_span, clip_starts, frames_needed
from .bridge import checks, fits, video_read
from .types import CATEGORY, validate


class SwiftI2VLoadClips(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VLoadClips",
            display_name="SwiftI2V Load Clips (training data)",
            category=f"{CATEGORY}/training",
            description="Decodes a video from ComfyUI's input folder and cuts clips of `length` "
                        "frames (4k+1) at start, start + stride, ... Outputs them as a list: the "
                        "nodes after it run once per clip. Only the frames needed are decoded.",
            inputs=[
                io.Combo.Input("video", options=video_read.video_files(), upload=io.UploadType.video,
                               tooltip="A video in ComfyUI's input folder (upload or pick)."),
                io.Int.Input("length", default=81, min=5, max=1025, step=4,
                             tooltip="Frames per clip, 4k+1 (paper: 81)."),
                io.Int.Input("start", default=0, min=0, max=1_000_000,
                             tooltip="First frame of the first clip."),
                io.Int.Input("stride", default=0, min=0, max=1_000_000,
                             tooltip="Source frames from one clip's start to the next (0 = back "
                                     "to back)."),
                io.Int.Input("max_clips", default=1, min=1, max=1000,
                             tooltip="At most this many clips; only those wholly inside the video "
                                     "are cut. All are held in RAM at once."),
                io.Int.Input("frame_step", default=1, min=1, max=16, optional=True,
                             tooltip="Take every n-th frame: 2 turns a 48 fps video into 24 fps "
                                     "clips (Wan 2.2 TI2V makes 24 fps). Start and stride count "
                                     "source frames."),
            ],
            outputs=[
                io.Image.Output("clips", display_name="clips", is_output_list=True,
                                tooltip="The clips, one IMAGE batch of `length` frames each."),
                io.Int.Output("starts", display_name="start", is_output_list=True,
                              tooltip="Each clip's first frame in the video."),
                io.String.Output("name", display_name="name",
                                 tooltip="The video's file name without extension."),
                io.Float.Output("fps", display_name="fps",
                                tooltip="The clips' frame rate (the video's / frame_step)."),
            ],
        )

    RULES = {"video": video_read.input_path, "length": check_frames}

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    def fingerprint_inputs(cls, video, **_):
        try:
            return os.path.getmtime(video_read.input_path(video))
        except checks.SwiftInputError:
            return float("nan")

    @classmethod
    def execute(cls, video, length, start, stride, max_clips, frame_step=1) -> io.NodeOutput:
        path = video_read.input_path(video)
        count = frames_needed(length, start, stride, max_clips, frame_step)
        frames, fps = video_read.read_frames(path, count)
        starts = clip_starts(frames.shape[0], length, start, stride, max_clips, frame_step,
                             name=f"video={video!r}")
        fits.check_host_fits(len(starts) * frames_bytes(length, frames.shape[2], frames.shape[1]),
                             inputs=f"length={length}, max_clips={max_clips}",
                             what=f"{len(starts)} clip(s) of {length} frames",
                             advice="lower max_clips or length")
        span = clip_span(length, frame_step)
        clips = [frames[s:s + span:frame_step].float() / 255.0 for s in starts]
        stem = os.path.splitext(os.path.basename(path))[0]
        name = re.sub(r"[^A-Za-z0-9._ -]+", "_", stem).strip("._ ") or "video"   # a file name
        return io.NodeOutput(clips, starts, name, fps / frame_step)
