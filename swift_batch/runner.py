"""A batch over several ComfyUI servers that survives restarts of itself and of the servers.

Each row's prompt id comes from the row, the patched workflow and its output (``jobs.job_id``).
Before queueing, every server is asked about that id: a finished prompt is downloaded, a queued
or running one is followed (attached), and only a prompt no server knows is queued. The batch's
record (``state.BatchState``) says which row ran where. A row is done when ComfyUI's history
reports success and its output is complete on disk. A server that goes away hands its row back:
another server takes it after ``--retry-after`` seconds, unless the row turns up done somewhere.
Ctrl-C removes the batch's own queued prompts and interrupts only its own running ones.
"""
from __future__ import annotations

import json
import queue
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from swift_core.cards import fullest, write_beside

from .client import ComfyClient, ComfyError, PromptLost, ServerUnreachable, output_files
from .jobs import (batch_client_id, expected_frames, file_digest, job_id, samples_complete,
                   video_complete)
from .patch import WorkflowError, patch_for_data_row, patch_for_row
from .rows import Row, RowError, check_image, check_video
from .state import BatchState


#: Times the servers that went away are asked again before the rows left fail.
PROBES = 3


@dataclass
class Job:
    row: Row
    prompt: dict
    upload: Path                      # the image or video the prompt reads
    upload_name: str                  # its name in ComfyUI's input folder
    output: Path                      # the mp4, or the folder of samples
    frames: int | None = None
    prompt_id: str = ""
    not_before: float = 0.0           # a row handed back by a server that went away


def make_job(workflow: dict, row: Row, args) -> Job:
    """The row's prompt, patched as it will be queued, and its deterministic id. The upload goes
    into a folder named by the file's content, so its name (and the id) changes with the file."""
    source = Path(row.video if args.data else row.image)
    (check_video if args.data else check_image)(row)
    name = f"swifti2v/{file_digest(source)}/{source.name}"
    if args.data:
        defaults = {"start": args.start, "stride": args.stride, "clips": args.clips,
                    "frame_step": args.frame_step,
                    "synthesize_fraction": None if args.plain_fraction is None
                    else 1.0 - args.plain_fraction}
        prompt = patch_for_data_row(workflow, row, name, f"{args.prefix}/{row.name}", defaults)
        output = args.out / row.name
    else:
        prompt = patch_for_row(workflow, row, name, args.prefix)
        output = args.out / f"{row.name}.mp4"
    job = Job(row, prompt, source, name, output, None if args.data else expected_frames(prompt))
    job.prompt_id = job_id(row.name, prompt, output)
    return job


def complete(job: Job, data: bool) -> bool:
    return samples_complete(job.output) if data else video_complete(job.output, job.frames)


def fetch(client: ComfyClient, entry: dict, job: Job, args) -> Path:
    """Download the prompt's outputs; the final name appears only when everything is in."""
    if args.data:
        files = [f for f in output_files(entry) if f["filename"].endswith(".safetensors")]
        if not files:
            raise ComfyError(f"row {job.row.number}: the prompt finished but wrote no sample")
        tmp = args.out / ".incoming" / job.row.name
        shutil.rmtree(tmp, ignore_errors=True)
        for f in files:
            client.download(f, str(tmp))
        shutil.rmtree(job.output, ignore_errors=True)
        tmp.replace(job.output)
    else:
        videos = [f for f in output_files(entry) if f["filename"].lower().endswith(".mp4")]
        if not videos:
            raise ComfyError(f"row {job.row.number}: the prompt finished but wrote no mp4")
        got = Path(client.download(videos[-1], str(args.out / ".incoming")))
        got.replace(job.output)
    if not complete(job, args.data):
        raise ComfyError(f"row {job.row.number}: the downloaded output {job.output} is incomplete")
    return job.output


def stage2_plan(entry: dict):
    """The Stage II sampler's plan output (JSON text) in a history entry, if it has one."""
    for out in entry.get("outputs", {}).values():
        if isinstance(out, dict) and out.get("swifti2v_plan"):
            return out["swifti2v_plan"][0]
    return None


def run_card(entry: dict) -> dict | None:
    """The run card of a history entry: of the cards the pack's nodes returned (``swifti2v_card``
    ui entries), the one with every stage (swift_core.cards)."""
    return fullest(text for out in entry.get("outputs", {}).values() if isinstance(out, dict)
                   for text in out.get("swifti2v_card", []))


def describe(plan_text: str) -> str:
    """One log line of a plan: m, n, segments, what auto chose, what a retry changed."""
    try:
        p = json.loads(plan_text)
    except ValueError:
        return f"plan {plan_text[:120]}"
    parts = [f"plan m={p.get('m')} n={p.get('n')}, {len(p.get('segments', []))} segments, "
             f"VAE tile {p.get('tile_size')}"]
    parts += list(p.get("auto", {}).values()) + list(p.get("changes", []))
    return "; ".join(parts)


def locate(clients: list[ComfyClient], prompt_id: str):
    """(client, status) of the first server that knows the prompt, finished ones first."""
    found = []
    for c in clients:
        try:
            where = c.locate(prompt_id)
        except ComfyError:
            continue
        if where is not None:
            found.append((c, where))
    order = {"done": 0, "running": 1, "queued": 2, "failed": 3}
    return min(found, key=lambda f: order[f[1]], default=(None, None))


class Batch:
    def __init__(self, args, workflow: dict, clients: list[ComfyClient], state: BatchState,
                 log):
        self.args, self.workflow, self.clients, self.state, self.log = (
            args, workflow, clients, state, log)
        self.todo: "queue.Queue[Job]" = queue.Queue()
        self.remaining = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.summary = {"done": [], "failed": []}

    # -- one row
    def run_job(self, client: ComfyClient, job: Job, progress) -> Path:
        args, pid = self.args, job.prompt_id
        owner, where = locate(self.clients, pid)
        if where == "failed":                    # queue it again (ComfyUI keeps the failure)
            owner, where = None, None
        if where in ("queued", "running"):
            self.log(f"row {job.row.number} ({job.row.name}): attached to its prompt {pid} on "
                     f"{owner.url} ({where})")
        if where is None:
            owner = client
            uploaded = owner.upload_image(str(job.upload), subfolder=str(Path(job.upload_name).parent))
            if uploaded != job.upload_name:
                raise ComfyError(f"{owner.url} stored {job.upload} as {uploaded!r}, not "
                                 f"{job.upload_name!r}")
        self.state.update(job.row.name, prompt_id=pid, server=owner.url, status="submitted",
                          output=str(job.output))
        bar = progress(job.row)
        try:
            if where == "done":
                entry = owner.history(pid)
            elif where in ("queued", "running"):
                entry = owner.wait(pid, on_event=self.on_event(job, bar), timeout=args.timeout)
            else:
                entry = owner.run(job.prompt, on_event=self.on_event(job, bar),
                                  timeout=args.timeout, prompt_id=pid)
        finally:
            if bar is not None:
                bar.close()
        path = fetch(owner, entry, job, args)
        plan, card = stage2_plan(entry), run_card(entry)
        if card is not None and path.suffix == ".mp4":
            write_beside(path, card)
        self.state.update(job.row.name, status="done", server=owner.url,
                          **({"plan": plan} if plan else {}), **({"card": card} if card else {}))
        if plan:
            self.log(f"row {job.row.number} ({job.row.name}): {describe(plan)}")
        return path

    def on_event(self, job: Job, bar):
        def on_event(kind, data):
            if bar is not None and kind == "progress":
                node = job.prompt.get(str(data.get("node")), {})
                bar.set_description(f"{job.row.name}: "
                                    f"{node.get('_meta', {}).get('title', data.get('node'))}")
                bar.total = data.get("max") or bar.total
                bar.n = data.get("value", 0)
                bar.refresh()
        return on_event

    # -- the workers: one per server entry
    def finish(self, job: Job, ok: bool, text: str) -> None:
        with self.lock:
            self.summary["done" if ok else "failed"].append(text)
            self.remaining -= 1

    def worker(self, client: ComfyClient, progress) -> None:
        while not self.stop.is_set():
            try:
                job = self.todo.get(timeout=0.2)
            except queue.Empty:
                with self.lock:
                    if self.remaining <= 0:
                        return
                continue
            wait = job.not_before - time.monotonic()
            if wait > 0:
                self.todo.put(job)
                time.sleep(min(wait, 0.5))
                continue
            try:
                path = self.run_job(client, job, progress)
                self.finish(job, True, str(path))
                self.log(f"row {job.row.number} ({job.row.name}): {path} [{client.url}]")
            except (ServerUnreachable, PromptLost) as e:
                gone = isinstance(e, ServerUnreachable) or not client.alive()
                job.not_before = time.monotonic() + (self.args.retry_after if gone else 0.0)
                self.state.update(job.row.name, status="retry", server=None)
                if not gone:        # the server answers: only this prompt is unknown to it
                    self.log(f"server {client.url} answers but {e}; row {job.row.number} "
                             f"({job.row.name}) is queued again")
                    self.todo.put(job)
                    continue
                self.log(f"server {client.url} went away ({e}); row {job.row.number} "
                         f"({job.row.name}) goes to another server in {self.args.retry_after:g} s "
                         "unless it turns up done")
                self.todo.put(job)
                return                                   # this server takes no more rows
            except (ComfyError, RowError, WorkflowError, OSError) as e:
                if self.stop.is_set():
                    return
                self.state.update(job.row.name, status="failed", error=str(e))
                self.finish(job, False, f"row {job.row.number} ({job.row.name}): {e}")
                self.log(f"row {job.row.number} ({job.row.name}) failed: {e}")

    def cancel(self) -> str:
        """Ctrl-C: the batch's own queued prompts removed, its running ones interrupted."""
        removed = interrupted = 0
        for c in {c.url: c for c in self.clients}.values():
            own = self.state.own(c.url)
            try:
                running, pending = c.queue_ids()
                queued = [p for p in own if p in pending]
                c.delete_queued(queued)
                for p in own:
                    if p in running:
                        c.interrupt(p)
                        interrupted += 1
                removed += len(queued)
            except ComfyError:
                continue
            for name in own.values():
                self.state.update(name, status="cancelled")
        return (f"stopped: {removed} queued prompt(s) of this batch removed, {interrupted} "
                f"interrupted; other users' prompts untouched; state in {self.state.path}")

    def work_on(self, clients: list[ComfyClient], progress) -> None:
        """One worker per server entry until the rows are done or every worker's server went
        away."""
        threads = [threading.Thread(target=self.worker, args=(c, progress), daemon=True)
                   for c in clients]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)

    def probe(self) -> list[ComfyClient]:
        """The servers that answer again, after the rows handed back have waited their
        ``--retry-after``."""
        wait = max((job.not_before for job in list(self.todo.queue)), default=0.0)
        time.sleep(max(0.0, min(wait - time.monotonic(), self.args.retry_after)))
        back = [c for c in self.clients if c.alive()]
        if back:
            self.log(f"{', '.join(sorted({c.url for c in back}))} answer(s) again: the "
                     f"{self.todo.qsize()} row(s) left go there")
        return back

    def run(self, jobs: list[Job], progress) -> dict:
        for job in jobs:
            self.todo.put(job)
        self.remaining = len(jobs)
        servers = self.clients
        for _ in range(PROBES + 1):
            self.work_on(servers, progress)
            if self.todo.empty() or self.stop.is_set():
                break
            servers = self.probe()                       # before rows fail for want of servers
            if not servers:
                break
        while not self.todo.empty():
            job = self.todo.get_nowait()
            self.state.update(job.row.name, status="failed", error="no server left to run it")
            self.summary["failed"].append(f"row {job.row.number} ({job.row.name}): no server "
                                          "left to run it")
        return self.summary


def progress_bars(args):
    def progress(row):
        if args.no_progress:
            return None
        from tqdm import tqdm
        return tqdm(total=1, desc=row.name, leave=False, file=sys.stderr)
    return progress


def plan(args, workflow: dict, rows: list, state: BatchState, log):
    """The jobs to run; rows done (recorded, or from before the record, complete on disk) are
    skipped; a bad row is reported and left out."""
    jobs, skipped, failed = [], [], []
    for row in rows:
        if isinstance(row, RowError):
            log(f"skipping {row}")
            failed.append(str(row))
            continue
        try:
            job = make_job(workflow, row, args)
        except (RowError, WorkflowError, OSError) as e:
            log(f"skipping row {row.number}: {e}")
            failed.append(f"row {row.number} ({row.name}): {e}")
            continue
        if complete(job, args.data):
            skipped.append(row.name)
            if state.get(row.name).get("status") != "done":
                state.update(row.name, status="done", prompt_id=job.prompt_id,
                             output=str(job.output))
        else:
            jobs.append(job)
    return jobs, skipped, failed


def clients_for(urls: list[str], out: Path) -> list[ComfyClient]:
    """One client per server entry (a server given twice runs two rows at once), each with a
    websocket identity kept across runs of this batch (ComfyUI keeps one socket per identity)."""
    cid = batch_client_id(out)
    return [ComfyClient(u, client_id=f"{cid}{i}") for i, u in enumerate(urls)]
