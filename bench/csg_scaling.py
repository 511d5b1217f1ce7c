"""Stage II with CSG (M=3, N=1) against the full-sequence baseline, side by side, on CPU.

Small random Wan 2.2 TI2V architecture (diffusers; dim 256, ffn 1024, 2 layers), 4 steps, latent
32x32 per block (256 tokens). Each
configuration runs in a fresh subprocess; peak = max RSS minus the baseline after model load.

    python -m bench.csg_scaling
"""
from __future__ import annotations

from swift_core import latent_blocks

from swift_testing.probe import probe_in_subprocess

FRAMES = (17, 33, 65, 129)


def probe(blocks: int, m: int, n: int = 1) -> dict:
    return probe_in_subprocess("--blocks", str(blocks), "--m", str(m), "--n", str(n),
                               "--dim-heads", "8", "--ffn", "1024")


def main():
    rows = []
    for f in FRAMES:
        t = latent_blocks(f)
        csg, full = probe(t, 3), probe(t, t)
        rows.append((f, t, csg, full))
    print("| frames | blocks | CSG M3N1 s | CSG peak MiB | full s | full peak MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for f, t, c, u in rows:
        print(f"| {f} | {t} | {c['seconds']:.2f} | {c['peak_mib']:.1f} | {u['seconds']:.2f} | "
              f"{u['peak_mib']:.1f} |")
    c0, cN, uN = rows[0][2], rows[-1][2], rows[-1][3]
    print(f"CSG peak at {FRAMES[-1]} / at {FRAMES[0]} frames: "
          f"{cN['peak_mib'] / c0['peak_mib']:.2f}x (flat is 1.00; aim <= 1.10)")
    c1 = rows[1][2]
    print(f"CSG peak at {FRAMES[-1]} / at {FRAMES[1]} frames: {cN['peak_mib'] / c1['peak_mib']:.2f}x "
          f"(same largest window, 1+N+M = 5 blocks; at {FRAMES[0]} frames the plan's largest "
          "window is only 4 blocks)")
    print(f"full-sequence time / CSG time at {FRAMES[-1]} frames: "
          f"{uN['seconds'] / cN['seconds']:.2f}x")
    print(f"full-sequence peak / CSG peak at {FRAMES[-1]} frames: "
          f"{uN['peak_mib'] / cN['peak_mib']:.2f}x")


if __name__ == "__main__":
    main()
