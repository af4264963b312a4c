"""Atomic JSON files: run records, manifests and trial state are never half-written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any


def write_json_atomic(path: str, obj: Any) -> None:
    """Writes JSON via a temp file in the same directory, fsync, then os.replace.

    A reader (or a rerun after a crash) sees either the old file or the new one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
