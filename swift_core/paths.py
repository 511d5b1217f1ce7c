"""Output paths: a prefix the user types must stay inside the output folder."""
from __future__ import annotations

import posixpath
import re


def check_prefix(prefix, name: str = "filename_prefix") -> str:
    """A relative path that stays inside the folder it is joined to (no absolute path, no '..'
    leading out). ComfyUI refuses such a prefix too, but only when the file is written."""
    if not isinstance(prefix, str) or not prefix.strip():
        raise ValueError(f"{name}={prefix!r}: must be a non-empty relative path inside ComfyUI's "
                         "output folder, e.g. 'SwiftI2V/video'")
    p = prefix.replace("\\", "/")
    if p.startswith("/") or re.match(r"^[A-Za-z]:", p):
        raise ValueError(f"{name}={prefix!r}: must be a relative path inside ComfyUI's output "
                         "folder, not an absolute path")
    norm = posixpath.normpath(p)
    if norm == ".." or norm.startswith("../"):
        raise ValueError(f"{name}={prefix!r}: must stay inside ComfyUI's output folder ('..' "
                         "leads out of it)")
    return prefix
