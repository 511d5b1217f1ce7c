"""One Stage II run: the checks, the plan for this card, the CSG sampling and the video it
streams, with the plan that really ran. The CSG Stage II Sampler node and ``bench.gpu_stage2``
both call :func:`stage2`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from ...swift_core.plan import describe_plan, plan_segments
from ...swift_core.rules import WAN22_SPATIAL, check_denoise
from ...swift_core.sizes import video_frames
from . import auto_fit, checks, csg, fits, oom, progress, run_card, streaming

#: Why there is no VIDEO without the vae input (never a None handed to core's video nodes).
NO_VAE_VIDEO = ("vae: the video output needs the vae input (the Wan 2.2 VAE, "
                "wan2.2_vae.safetensors) connected; connect it, or use the latent output only")


@dataclass(frozen=True)
class Stage2Settings:
    """The Stage II Sampler's widgets (``m`` and ``tile_size``: 0 = auto)."""

    seed: int
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str
    m: int
    n: int
    rope: str = "window"
    mode: str = "auto"
    denoise: float = 0.6
    frame_rate: float = 16.0
    tile_size: int = 0
    overlap: int = 64
    color_match: str = "off"


def resident_models(model, vae) -> list:
    """What stays loaded while Stage II samples: the model, and the VAE when it streams."""
    return [model] + ([vae.patcher] if vae is not None else [])


def fit_to_device(model, vae, latent_shape, m: int, n: int, cfg: float, tile_size: int,
                  overlap: int):
    """``m`` and ``tile_size`` with auto (0) chosen for the device, before any work: (m,
    tile_size, {input: why}). An explicit ``m`` is checked against the device instead."""
    chosen = {}
    if m == 0:
        m, chosen["m"] = auto_fit.resolve(auto_fit.auto_m(model, latent_shape, n, cfg,
                                                          resident_models(model, vae)))
    else:
        fits.check_window_fits(model, latent_shape, m, n, cfg)
    if vae is not None:
        h, w = (d * WAN22_SPATIAL for d in latent_shape[3:])
        tile_size, why = auto_fit.tile_for(vae, tile_size, h, w, overlap, decode=True,
                                           resident=[model])
        if why is not None:
            chosen["tile_size"] = why
    return m, tile_size, chosen


def open_stream(vae, ref, s: Stage2Settings, tile_size: int, model, name: str):
    """The video written while Stage II runs (the VAE connected), or :class:`NoStream`."""
    if vae is None:
        return streaming.NoStream(NO_VAE_VIDEO)
    return streaming.SegmentStreamer(vae, ref.shape[3], ref.shape[4], s.frame_rate,
                                     video_frames(ref.shape[2]), tile_px=tile_size,
                                     overlap_px=s.overlap, color_match=s.color_match,
                                     name=name, with_models=[model], asked_tile=s.tile_size)


def stage2(model, positive, negative, ref, vae, s: Stage2Settings, *, video_wanted: bool,
           name: str = "swifti2v_stage2", on_segment: Callable = lambda seg, frames: None):
    """Stage II over the raw reference latent ``ref`` (block 0: the anchor): (the raw 2K latent,
    the VIDEO or a blocked output, the plan that ran as JSON). Every check runs before any heavy
    work; ``on_segment(segment, frames)`` follows each segment's decode (benchmarks)."""
    mode = checks.resolve_mode(model, s.mode)
    check_denoise(s.denoise, mode)
    if vae is None:                 # a VIDEO consumer needs the vae: refused before any work
        checks.check(not video_wanted, NO_VAE_VIDEO)
    else:
        checks.check_stage2_vae(vae)
    m, tile_size, chosen = fit_to_device(model, vae, ref.shape, s.m, s.n, s.cfg, s.tile_size,
                                         s.overlap)
    plan = plan_segments(ref.shape[2], m, s.n)
    bar = progress.SegmentProgress(model, s.steps, plan)
    retry = oom.WindowRetry(s.n, on_replan=bar.replanned)
    measured = auto_fit.first_window_fit(model, ref.shape, m, s.n, s.cfg,
                                         resident_models(model, vae), explicit=s.m != 0,
                                         on_replan=bar.replanned)
    stream = open_stream(vae, ref, s, tile_size, model, name)

    def segment_done(seg, blocks):
        on_segment(seg, stream.add(blocks))
        bar.segment_done(seg, stream.preview())

    try:
        stream.add(ref[:, :, :1])                                   # frame 0: your image
        out, ran = csg.run_stage2(model, positive, negative, ref, plan, seed=s.seed,
                                  steps=s.steps, cfg=s.cfg, sampler_name=s.sampler_name,
                                  scheduler=s.scheduler, rope=s.rope, mode=mode,
                                  denoise=s.denoise, on_step=bar.step, on_segment=segment_done,
                                  retry=retry, measured=measured)
        video = stream.finish()
    except BaseException:
        stream.abort()
        raise
    info = describe_plan(ran, m=m, n=s.n, chosen=chosen,
                         tile_size=stream.tile_size,
                         changes=retry.changes + measured.changes + stream.changes)
    run_card.note(**card_fields(ref, s, mode, info, plan))
    return out.to(progress.intermediate_device()), video, info


def card_fields(ref, s: Stage2Settings, mode: str, info: str, planned) -> dict:
    """What the run card says Stage II ran: sizes, sampling, the plan that ran and, where an
    out-of-memory retry changed it, the plan it started with."""
    ran = json.loads(info)
    h, w = (d * WAN22_SPATIAL for d in ref.shape[3:])
    first = [[seg.current[0], seg.current[-1]] for seg in planned]
    return {"frames": video_frames(ref.shape[2]), "size": f"{w}x{h}", "steps": s.steps,
            "sampler": s.sampler_name, "scheduler": s.scheduler, "cfg": s.cfg, "mode": mode,
            "plan": ran, **({"plan_first": {"m": ran["m"], "n": ran["n"], "segments": first}}
                            if first != ran["segments"] else {})}
