"""One Stage II training step traced without allocating anything: the model built under torch's
FakeTensorMode with a fake process group, sharded with FSDP2 (or HSDP) exactly as
:func:`swift_train.train.build_model` shards it, two steps run (the second holds AdamW's state).
Memory comes from torch's FSDP2 memory tracker, the bytes each collective moves from torch's
comm debug mode (:class:`CommBytes`). A trace starts a fake process group, so each runs in a
process of its own: :func:`traced` runs ``python -m swift_train.trace`` and reads its JSON.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from contextlib import nullcontext

from torch.distributed.tensor.debug import CommDebugMode

#: Wan2.2-TI2V-5B (diffusers' WanTransformer3DModel), 96 input channels: the Stage II model
WAN22_5B_STAGE2 = dict(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128,
                       in_channels=96, out_channels=48, text_dim=4096, freq_dim=256,
                       ffn_dim=14336, num_layers=30, rope_max_seq_len=1024)


def group_size(group) -> int:
    """The size of the process group a c10d op received (boxed as a script object)."""
    import torch
    from torch._C._distributed_c10d import ProcessGroup
    try:
        return (ProcessGroup.unbox(group) if isinstance(group, torch.ScriptObject)
                else group).size()
    except (AttributeError, RuntimeError, TypeError):
        return 0


class CommBytes(CommDebugMode):
    """Torch's comm debug mode, also adding up the bytes of each collective by kind and by the
    size of the group it ran in: an all-gather's output and a reduce-scatter's input (the whole
    buffer), an all-reduce's tensors."""

    def __init__(self):
        super().__init__()
        self.bytes: dict[tuple[str, int], int] = defaultdict(int)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        import torch
        c10d = torch.ops.c10d
        packet = getattr(func, "_overloadpacket", None)
        sized = {c10d._allgather_base_: ("all_gather", 0, 2),
                 c10d._reduce_scatter_base_: ("reduce_scatter", 1, 2),
                 c10d.allreduce_: ("all_reduce", 0, 1)}
        if packet in sized:
            kind, tensor_at, group_at = sized[packet]
            t = args[tensor_at]
            tensors = t if isinstance(t, (list, tuple)) else [t]
            size = group_size(args[group_at])
            self.bytes[(kind, size)] += sum(x.numel() * x.element_size() for x in tensors)
        return super().__torch_dispatch__(func, types, args, kwargs)

    def totals(self) -> dict:
        """``{"all_gather@8": bytes, ...}``: kind @ the group's size."""
        return {f"{kind}@{size}": b for (kind, size), b in sorted(self.bytes.items())}


def trace_step(config: dict, width: int, height: int, m: int, n: int, world: int,
               replicas: int = 1, checkpointing: bool = True, blocks_total: int = 21) -> dict:
    """Trace one step of the model ``config`` on a window of (M, N) at ``width`` x ``height``
    with ``world`` ranks (``replicas`` > 1: HSDP) in this process: peak memory of one rank by
    kind, and the bytes each kind of collective moves in one step."""
    import torch
    import torch.distributed as dist
    from diffusers import WanTransformer3DModel
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from torch.testing._internal.distributed.fake_pg import FakeStore

    from swift_core.memory import max_window_blocks

    from .train import device_mesh

    dist.init_process_group("fake", rank=0, world_size=world, store=FakeStore())
    mesh = device_mesh(torch.device("cpu"), world, replicas)
    lh, lw = height // 16, width // 16
    blocks = max_window_blocks(blocks_total, m, n)
    comm = CommBytes()
    with FakeTensorMode():
        model = WanTransformer3DModel(**config)
        params = sum(p.numel() for p in model.parameters())
        block_params = sum(p.numel() for b in model.blocks for p in b.parameters())
        if checkpointing:
            model.enable_gradient_checkpointing()
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        for block in model.blocks:
            fully_shard(block, mesh=mesh, mp_policy=mp)
        fully_shard(model, mesh=mesh, mp_policy=mp)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        x = torch.randn(1, config["in_channels"], blocks, lh, lw)
        t = torch.rand(1, blocks * (lh // 2) * (lw // 2)) * 1000
        context = torch.randn(1, 512, config["text_dim"])
        tracker = FSDPMemTracker(model, opt)
        tracker.track_inputs((x, t, context))
        with tracker:
            for step in range(2):
                opt.zero_grad()
                with comm if step == 1 else nullcontext():
                    out = model(x, t, context, return_dict=False)[0]
                    out.float().square().mean().backward()
                opt.step()
                if step == 0:
                    tracker.reset_mod_stats()
        peak = next(iter(tracker.get_tracker_snapshot("peak").values()))
    dist.destroy_process_group()
    kind = {str(k.value) if hasattr(k, "value") else str(k): v for k, v in peak.items()}
    state = sum(kind.get(k, 0) for k in ("Sharded Param", "Sharded Grad", "OptState"))
    acts = sum(kind.get(k, 0) for k in ("Activation", "Temp"))
    return {"size": f"{width}x{height}", "pair": f"{m}x{n}", "window_blocks": blocks,
            "world": world, "replicas": replicas, "checkpointing": checkpointing,
            "params": params, "block_params": block_params, "traced_total": kind["Total"],
            "traced_state": state, "traced_activations": acts,
            "traced_gathered": kind["Total"] - state - acts, "comm_bytes": comm.totals()}


def fsdp2_comm_bytes(params: int, block_params: int) -> dict:
    """What the FSDP2 algebra says one step moves (whole buffers, one rank's view): each unit's
    parameters all-gathered in bf16 for the forward and again for the backward (the blocks are
    resharded after their forward; the root is not), and every gradient reduce-scattered in
    fp32."""
    return {"all_gather": 2 * (params + block_params), "reduce_scatter": 4 * params}


def traced(config: dict, width: int, height: int, m: int, n: int, world: int,
           replicas: int = 1, checkpointing: bool = True) -> dict:
    """:func:`trace_step` in a process of its own (a fake process group per trace)."""
    spec = json.dumps({"config": config, "width": width, "height": height, "m": m, "n": n,
                       "world": world, "replicas": replicas, "checkpointing": checkpointing})
    r = subprocess.run([sys.executable, "-m", "swift_train.trace", spec], capture_output=True,
                       text=True)
    rows = [x for x in r.stdout.splitlines() if x.startswith("ROW=")]
    if r.returncode or not rows:
        raise RuntimeError(f"trace failed: {r.stderr[-2000:]}")
    return json.loads(rows[0][4:])


def main(argv=None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    cfg = spec.pop("config")
    cfg["patch_size"] = tuple(cfg["patch_size"])
    print("ROW=" + json.dumps(trace_step(cfg, **spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
