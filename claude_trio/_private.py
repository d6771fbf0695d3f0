"""Private temporary files: a directory only the owner can enter, files only the owner
can read, each created exclusively and never through a symbolic link."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def private_directory(prefix: str, temp_dir: str | os.PathLike[str] | None) -> Iterator[Path]:
    """Create a new 0700 directory in *temp_dir* (the system's temporary directory by
    default); remove it and everything in it when the block ends, also when it raises."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=temp_dir))
    try:
        os.chmod(directory, 0o700)  # mkdtemp's 0700 less a umask that removed owner bits
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write *data* to the new file *path* with *mode* (whatever the umask).

    Raises:
        FileExistsError: If *path* exists (a symbolic link included).
        OSError: If it cannot be written.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
