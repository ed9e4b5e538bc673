"""Files written whole or not at all: every cache, stamp and run file acelib rewrites goes through `atomic_write`.

No acelib imports: any box may use it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temporary sibling and an atomic rename: a reader sees the old file or the new
    one, never half of one, and a crash leaves no partial file under `path`. The temporary name is unique, so two
    processes writing the same path do not write into one temporary file. The file gets mode 0644, like a plain
    `write_text` under the usual umask (mkstemp alone would leave it readable by its owner only)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
