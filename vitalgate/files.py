"""Files that hold health data or secrets: created with mode 0600, replaced atomically.

A reader polling for a file (a test waiting for the simulator's info file, a dashboard
reading a truth log) must never see it empty or half written, so :func:`write_private`
writes a temporary sibling, syncs it and renames it over the target.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: str | os.PathLike[str], data: str | bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` with mode 0600, all at once.

    The content goes to ``<path>.tmp`` first (created 0600, so the data is never readable by
    others, even for a moment) and is renamed over ``path``: readers see the old file or the
    new one, never a partial one. ``sync`` fsyncs the content before the rename, so a crash
    cannot leave an empty file behind either.
    """
    target = Path(path)
    temp = target.with_name(target.name + ".tmp")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a stale temp file keeps its old mode through O_CREAT
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temp, target)
