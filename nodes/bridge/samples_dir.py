"""Where training samples go: a folder inside ComfyUI's output folder, never outside it."""
from __future__ import annotations

import os
from dataclasses import dataclass

import folder_paths

from ...swift_core.rules import check, check_prefix


@dataclass(frozen=True)
class SamplePath:
    path: str
    ui: dict


def sample_path(folder: str, filename: str) -> SamplePath:
    """``<output>/<folder>/<filename>``, the folder created; refused if it would leave the output
    folder (through ``..``, an absolute path or a link)."""
    check_prefix(folder, "folder")
    root = os.path.realpath(folder_paths.get_output_directory())
    target_dir = os.path.realpath(os.path.join(root, folder))
    check(os.path.commonpath([root, target_dir]) == root,
          f"folder={folder!r}: must stay inside ComfyUI's output folder")
    os.makedirs(target_dir, exist_ok=True)
    subfolder = os.path.relpath(target_dir, root).replace(os.sep, "/")
    return SamplePath(os.path.join(target_dir, filename),
                      {"filename": filename, "subfolder": "" if subfolder == "." else subfolder,
                       "type": "output"})
