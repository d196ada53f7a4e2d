"""Files that readers (the broker, reloading at any moment) must see whole: old or new, never a
part, and still new after a crash."""

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE, PUBLIC = 0o600, 0o644


def write_atomically(target: str | os.PathLike, data: bytes, mode: int = PRIVATE) -> None:
    """Replace `target` with `data` at `mode` (whatever the umask): a temporary file beside it,
    fsynced, renamed over it, then the directory fsynced so the rename itself survives a crash
    (a revoked certificate must not come back in an old CRL). If anything fails the old file
    is left as it was and the temporary one is removed."""
    target = Path(target)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(target.parent)


def fsync_directory(directory: str | os.PathLike) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
