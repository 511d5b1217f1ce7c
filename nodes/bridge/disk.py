"""The disk under the pack's files: room checked before a run writes, finished files moved into
place so that a final name only ever holds a complete file."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from ...swift_core.rules import SwiftInputError


def check_space(folder: Path, need: int, what: str) -> None:
    """Refuse, naming the folder and its free space, when it cannot be written or lacks ``need``
    bytes for ``what``: before any heavy work."""
    probe = folder / f".probe_{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"0")
        probe.unlink()
    except OSError as e:
        raise SwiftInputError(f"{what}: the folder {str(folder)!r} cannot be written "
                              f"({e.strerror or e}); check ComfyUI's output folder") from None
    free = shutil.disk_usage(folder).free
    if free < need:
        raise SwiftInputError(f"{what}: the folder {str(folder)!r} has {free / 2**20:.0f} MiB "
                              f"free; the video needs about {need / 2**20:.0f} MiB: free space "
                              "there or choose another output folder (--output-directory)")


def move_into(path: str, final: str) -> str:
    """Move a finished file to its final place (a rename on one disk, a copy then rename
    across disks: the final name appears only when complete)."""
    try:
        os.replace(path, final)
    except OSError:
        tmp = f"{final}.{uuid.uuid4().hex[:8]}.part"
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        os.remove(path)
    return final
