"""The folder the pack's growing files live in: one per ComfyUI process, safe from other instances.

ComfyUI empties its temp folder when it starts, so with one instance per GPU from one install, the
second instance's start-up would delete the video the first is still writing. The pack writes its
streamed videos instead into ``<output>/.swifti2v_work/<host>-<pid>-<start>/``, a hidden folder of
the output folder (no instance ever empties it; the finished file is renamed into the output folder
on the same disk, at once):

- a video under construction is ``<name>.<random>.part.mp4`` there, renamed when complete;
- a VIDEO handed to core's Save Video is a finished file there, kept while ComfyUI's cache holds
  that result (it may hand it to Save Video again) and removed once nothing references it;
- the folder is removed when the process exits, and a folder whose owner is gone (killed,
  crashed: its pid is dead or now another process) is removed by the next sweep, which runs when
  the pack loads and before each streamed run. A live owner's folder is never touched, nor one
  of another machine (a shared output disk).
"""
from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import socket
from pathlib import Path

import folder_paths

ROOT_NAME = ".swifti2v_work"
log = logging.getLogger("swifti2v")


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (ms since the epoch; 0: alive, time unknown), or None if there
    is no such process. The start time tells a live owner from a later process given its pid."""
    try:
        import psutil
    except ImportError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        return 0


def host() -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in socket.gethostname()) or "host"


def owner_name(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{host()}-{pid}-{process_start(pid)}"


def owner_alive(name: str) -> bool:
    """Whether the process that named a folder ``name`` still runs (True when unknown: another
    machine's, or a name this module did not make)."""
    parts = name.split("-")
    try:
        machine, pid, start = parts[0], int(parts[1]), int(parts[2])
    except (ValueError, IndexError):
        return True
    if len(parts) != 3 or machine != host():
        return True
    now = process_start(pid)
    return now is not None and (now == 0 or start == 0 or abs(now - start) <= 1)


def root() -> Path:
    return Path(folder_paths.get_output_directory()) / ROOT_NAME


def sweep(base: Path | None = None) -> list[str]:
    """Remove the folders of owners that are gone; returns their names."""
    base = root() if base is None else base
    removed = []
    if not base.is_dir():
        return removed
    for entry in base.iterdir():
        if entry.is_dir() and not owner_alive(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    if removed:
        log.info("SwiftI2V: removed %d work folder(s) of ComfyUI processes that are gone: %s",
                 len(removed), ", ".join(removed))
    return removed


def sweep_at_start() -> None:
    """The start-up sweep: never stops ComfyUI from starting (a failure is one log line)."""
    try:
        sweep()
    except Exception as e:                  # an unreadable output folder: the run will say so
        log.warning("SwiftI2V: could not check %s for stale work folders: %s", root(), e)


@functools.lru_cache(maxsize=None)
def _removed_at_exit(folder: str) -> None:
    atexit.register(shutil.rmtree, folder, True)


def own_folder() -> Path:
    """This process's folder, after a sweep of the folders of owners that are gone (created, and
    removed at exit)."""
    sweep()
    folder = root() / owner_name()
    folder.mkdir(parents=True, exist_ok=True)
    _removed_at_exit(str(folder))
    return folder
