"""Stage II on ComfyUI's own sampling path (each CSG window one core masked-sampling call).

Every sampler and scheduler the running ComfyUI lists, a core MODEL patch that works through
sampling wrappers, what the diffusion model really receives, and equivalence with the plain-torch
reference ``swift_core.sample_csg``.
"""
import itertools
import re

import pytest
import torch
from safetensors.torch import load_file

from swift_core import plan_segments

from swift_testing.comfy_host.graphs import pipeline
from swift_testing.comfy_host.server import comfy_sampling_names


def saved(server, name):
    return load_file(str(server.output / "swifti2v_test" / f"{name}.safetensors"))


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-8))


def check_stage2_result(t):
    assert t["latent"].isfinite().all()
    assert (t["latent"][:, :, :1] == t["anchor"]).all()                 # block 0: the anchor
    assert not torch.equal(t["latent"][:, :, 1:], t["reference"][:, :, 1:])


def test_every_sampler_comfyui_lists(client, server, sampler_name):
    name = f"sampler_{sampler_name}"
    client.run(pipeline(stage2="stage2_96", sampler2=sampler_name, steps2=3, decoder=False,
                        compare=False, save_name=name), timeout=900)
    check_stage2_result(saved(server, name))


def test_every_scheduler_with_euler(client, server, scheduler_name):
    name = f"scheduler_{scheduler_name}"
    client.run(pipeline(stage2="stage2_96", scheduler2=scheduler_name, steps2=3, decoder=False,
                        compare=False, save_name=name), timeout=900)
    check_stage2_result(saved(server, name))


@pytest.mark.parametrize("mode,stage2,denoise", [("swifti2v", "stage2_96", 1.0),
                                                 ("refine", "stage2_48", 0.6)])
def test_stage2_runs_core_ksampler_sigmas_for_every_sampler_and_scheduler(client, mode, stage2,
                                                                          denoise):
    """One prompt with a Stage II node per sampler x scheduler ComfyUI lists, each on a model
    whose sampling only records the sigmas it is handed (every window): they equal what core's
    KSampler computes for the same model, steps and denoise (the penultimate sigma dropped for
    dpm_2 / uni_pc, the tail of a longer schedule for denoise < 1)."""
    samplers, schedulers = comfy_sampling_names()
    g = pipeline(stage2=stage2, mode=mode, steps2=3, m=1, n=1, denoise=denoise, decoder=False,
                 compare=False)
    stage2_node = g.pop("12")
    del g["15"]
    for i, (sampler, scheduler) in enumerate(itertools.product(samplers, schedulers)):
        tag, rec, node, cmp = f"{mode}:{sampler}:{scheduler}", *(str(1000 + 3 * i + k)
                                                                 for k in range(3))
        g[rec] = {"class_type": "SwiftTestRecordSigmas", "inputs": {"model": ["2", 0], "tag": tag}}
        g[node] = {"class_type": stage2_node["class_type"], "inputs": dict(
            stage2_node["inputs"], model=[rec, 0], sampler_name=sampler, scheduler=scheduler)}
        g[cmp] = {"class_type": "SwiftTestCompareSigmas", "inputs": {
            "model": ["2", 0], "latent": [node, 0], "tag": tag, "sampler_name": sampler,
            "scheduler": scheduler, "steps": 3, "denoise": denoise}}
    entry = client.run(g, timeout=1800)
    results = [o["sigmas"][0] for o in entry["outputs"].values() if "sigmas" in o]
    assert len(results) == len(samplers) * len(schedulers)
    for r in results:
        assert len(r["seen"]) == 2, r["tag"]             # 9 frames, m=1: two windows
        assert all(seen == r["core"] for seen in r["seen"]), r


def test_easycache_patch_acts_on_stage2(client, server):
    """Core's EasyCache works only through OUTER_SAMPLE / CALC_COND_BATCH / DIFFUSION_MODEL
    wrappers: on Stage II it must run once per window and skip model calls."""
    plain = pipeline(stage2="stage2_96", steps2=10, m=1, decoder=False, compare=False,
                     save_name="easycache_off")
    client.run(plain, timeout=900)
    g = pipeline(stage2="stage2_96", steps2=10, m=1, decoder=False, compare=False,
                 save_name="easycache_on")
    g["30"] = {"class_type": "EasyCache", "inputs": {
        "model": ["2", 0], "reuse_threshold": 3.0, "start_percent": 0.0, "end_percent": 1.0,
        "verbose": False}}
    g["12"]["inputs"]["model"] = ["30", 0]
    before = len(server.log_text())
    client.run(g, timeout=900)
    runs = re.findall(r"EasyCache - skipped (\d+)/(\d+) steps", server.log_text()[before:])
    assert len(runs) == 2, runs                                  # 9 frames, m=1: two windows
    assert all(int(total) == 10 for _, total in runs)
    assert sum(int(skipped) for skipped, _ in runs) > 0
    on, off = saved(server, "easycache_on"), saved(server, "easycache_off")
    assert (on["latent"][:, :, :1] == on["anchor"]).all() and on["latent"].isfinite().all()
    assert not torch.equal(on["latent"], off["latent"])          # the skipped calls show


def test_model_sees_clean_context_at_timestep_zero(client, server):
    """A test-only DIFFUSION_MODEL wrapper records every model call of Stage II."""
    m, n, steps, length = 1, 2, 2, 13
    g = pipeline(stage2="stage2_96", steps2=steps, m=m, n=n, length=length, decoder=False,
                 compare=False, save_name="recorded")
    g["31"] = {"class_type": "SwiftTestRecordModel", "inputs": {"model": ["2", 0], "tag": "rec"}}
    g["12"]["inputs"]["model"] = ["31", 0]
    g["32"] = {"class_type": "SwiftTestSaveRecords", "inputs": {
        "model": ["2", 0], "latent": ["12", 0], "tag": "rec"}}
    client.run(g, timeout=900)
    rec = saved(server, "rec")
    final = rec["final_in"]                       # the result in the model's latent space
    plan = plan_segments(final.shape[2], m, n)
    calls = sorted(k[2:] for k in rec if k.startswith("x_"))
    assert len(calls) == len(plan) * steps        # cfg 1: one model call per step
    for i, c in enumerate(calls):
        seg = plan[i // steps]
        x, t = rec[f"x_{c}"], rec[f"t_{c}"]
        nc, win = len(seg.context), list(seg.window)
        assert x.shape[2] == len(win) and t.shape == (1, len(win))
        assert (t[:, :nc] == 0).all(), (seg, t)                       # context: timestep 0
        assert (t[:, nc:] > 0).all() and (t[:, nc:] == t[:, nc:nc + 1]).all()
        assert torch.equal(x[:, :, 0], final[:, :, 0])                # the anchor, untouched
        # context blocks are the final values of finished segments: never written again
        assert torch.equal(x[:, :, :nc], final[:, :, list(seg.context)]), seg


@pytest.mark.parametrize("mode", ["swifti2v", "refine"])
@pytest.mark.parametrize("rope", ["window", "absolute"])
def test_comfyui_path_equals_swift_core_sample_csg(client, server, mode, rope):
    """Same tiny model, Euler, float32: the core masked-sampling path and the plain-torch
    ``sample_csg`` over a denoiser that calls the diffusion model directly agree.

    Tolerance 1e-5 relative (measured: about 2.4e-7 on 0.33): both run the same float32 ops
    except (a) ComfyUI keeps finished blocks in raw VAE space and converts them back
    (process_latent_out/in: one scale and shift each way, ~1e-7 relative), and (b) Euler's update
    is computed in another order (x + (x - d) / s * ds vs x + (x - d) * (ds / s)).
    With m=1, n=1 over 4 blocks the windows are [0,1], [0,1,2], [0,2,3]: only the last has a gap,
    so the other rope setting must agree on blocks 1-2 and differ on block 3 (measured 2e-3 to
    7e-3 with the tiny random model): the comparison can fail.
    """
    name = f"equiv_{mode}_{rope}"
    stage2 = "stage2_96" if mode == "swifti2v" else "stage2_48"
    g = pipeline(stage2=stage2, mode=mode, rope=rope, steps2=3, m=1, n=1, length=13,
                 denoise=0.6, decoder=False, compare=False, save_name=name)
    oracle = {"model": ["2", 0], "positive": ["5", 0], "reference": ["11", 0], "seed": 0,
              "steps": 3, "m": 1, "n": 1, "mode": mode, "denoise": 0.6}
    g["33"] = {"class_type": "SwiftTestReferenceCSG", "inputs": dict(oracle, rope=rope)}
    other = "window" if rope == "absolute" else "absolute"
    g["34"] = {"class_type": "SwiftTestReferenceCSG", "inputs": dict(oracle, rope=other)}
    g["15"]["inputs"]["latent_b"] = ["33", 0]
    g["15"]["inputs"]["latent_c"] = ["34", 0]
    client.run(g, timeout=900)
    t = saved(server, name)
    assert (t["latent"][:, :, :1] == t["anchor"]).all()
    assert rel_err(t["latent"][:, :, 1:], t["latent_b"][:, :, 1:]) < 1e-5
    assert rel_err(t["latent"][:, :, 1:3], t["latent_c"][:, :, 1:3]) < 1e-5
    assert rel_err(t["latent"][:, :, 3], t["latent_c"][:, :, 3]) > 1e-3
