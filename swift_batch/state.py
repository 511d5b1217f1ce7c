"""The batch's own record, in its output folder: which row ran where, under which prompt id, and
how it ended. Rewritten whole under a temporary name and renamed at every change, so a killed
client leaves it readable; a re-run reads it to attach to its own prompts instead of queueing
them again."""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

STATE_NAME = "swifti2v_batch_state.json"
#: a row's life: checking -> submitted (queued or running on ``server``) -> done | failed |
#: cancelled (Ctrl-C) | retry (its server went away: another takes it after --retry-after)
STATUSES = ("checking", "submitted", "done", "failed", "cancelled", "retry")


class BatchState:
    def __init__(self, folder: Path):
        self.path = Path(folder) / STATE_NAME
        self.lock = threading.Lock()
        self.rows: dict[str, dict] = {}
        if self.path.exists():
            try:
                self.rows = json.loads(self.path.read_text()).get("rows", {})
            except (ValueError, OSError) as e:
                raise ValueError(f"{self.path}: not a readable batch state ({e}); move it away "
                                 "to start the batch's record anew") from None

    def get(self, name: str) -> dict:
        with self.lock:
            return dict(self.rows.get(name, {}))

    def update(self, name: str, **fields) -> dict:
        with self.lock:
            row = self.rows.setdefault(name, {"name": name})
            if "status" in fields and fields["status"] != row.get("status"):
                fields.setdefault("since", time.strftime("%Y-%m-%dT%H:%M:%S"))
            row.update(fields)
            self._write()
            return dict(row)

    def own(self, server: str) -> dict[str, str]:
        """The prompts this batch has in flight on ``server``: prompt id -> row name."""
        with self.lock:
            return {r["prompt_id"]: name for name, r in self.rows.items()
                    if r.get("server") == server and r.get("status") == "submitted"}

    def _write(self) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        tmp.write_text(json.dumps({"version": 1, "rows": self.rows}, indent=1))
        os.replace(tmp, self.path)
