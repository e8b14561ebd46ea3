"""Reading the files a user names, and confining a public server to the files it was sent.

A path can name much more than a file: a device (``/dev/zero`` never ends), a FIFO (blocks the
reader until somebody writes), a socket, a folder, or a name the file system refuses (too long,
a NUL byte). ``read_bytes`` opens without blocking, looks at what it opened and reads only a
regular file, at most ``max_bytes`` of it, so one path can neither stall nor flood a process.

``UploadPolicy`` is what the web app adds: every path an API caller sends must be a file that
the server itself received (Gradio's upload folder) or one of the examples it ships. A string
naming anything else gets one message, the same whatever is at that path, so a caller learns
nothing about the server's disk.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import InputError, ZsdemoError

MAX_PATH_CHARS = 4096          # Linux's PATH_MAX: no longer path names a file

NOT_SENT = ("was not uploaded with this request: send image and zip files as uploads "
            "(gradio_client: handle_file(path); the web page: drag them in). "
            "Paths on the server and other strings are not accepted.")


def _open_flags() -> int:
    return os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def read_bytes(path: str | os.PathLike, label: str, max_bytes: int,
               error: type[ZsdemoError] = InputError) -> bytes:
    """The bytes of a regular file, or ``error`` with a one-line message saying what is wrong."""
    return _read(path, label, max_bytes, error, whole=True)


def read_head(path: str | os.PathLike, label: str, max_bytes: int,
              error: type[ZsdemoError] = InputError) -> bytes:
    """The first ``max_bytes`` bytes of a regular file, whatever its size (a file's header)."""
    return _read(path, label, max_bytes, error, whole=False)


def _read(path: str | os.PathLike, label: str, max_bytes: int, error: type[ZsdemoError], whole: bool) -> bytes:
    try:
        fd = os.open(path, _open_flags())
    except FileNotFoundError:
        raise error(f"{label}: file not found.") from None
    except IsADirectoryError:
        raise error(f"{label}: is a folder, not a file.") from None
    except ValueError:      # an embedded NUL byte
        raise error(f"{label}: the path contains a NUL character.") from None
    except OSError as e:    # too long a name, no permission, a loop of links...
        raise error(f"{label}: cannot be opened ({e.strerror or e}).") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{label}: is a folder, not a file.")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{label}: is not a regular file (a device, pipe or socket); give a file.")
        if whole and st.st_size > max_bytes:   # checked before reading
            raise error(f"{label}: the file is {st.st_size / 2**20:.1f} MB; the limit is "
                        f"{max_bytes / 2**20:.0f} MB. Use a smaller file.")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(2**20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as e:
        raise error(f"{label}: cannot be read ({e.strerror or e}).") from None
    finally:
        os.close(fd)
    if not whole:
        return data[:max_bytes]
    if len(data) > max_bytes:  # it grew while we read
        raise error(f"{label}: larger than the {max_bytes / 2**20:.0f} MB limit. Use a smaller file.")
    return data


def read_text(path: str | os.PathLike, label: str, max_bytes: int,
              error: type[ZsdemoError] = InputError) -> str:
    """A regular file's text as UTF-8 (a byte-order mark is dropped)."""
    data = read_bytes(path, label, max_bytes, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{label}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8.") from None


def is_regular_file(path: str | os.PathLike) -> bool:
    """``Path.is_file`` that answers False, never raises, for names the file system refuses."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_folder(path: str | os.PathLike) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class UploadPolicy:
    """The folders whose regular files a public caller may name: uploads, for any file argument,
    and the shipped example photos, for image arguments only (the page's examples name them; a
    support set or an evaluation zip never does)."""

    roots: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()

    @classmethod
    def of(cls, roots: Iterable[str | os.PathLike], examples: Iterable[str | os.PathLike] = ()) -> "UploadPolicy":
        return cls(tuple(os.path.realpath(r) for r in roots), tuple(os.path.realpath(r) for r in examples))

    def check(self, value: object, what: str = "a file", image: bool = False) -> str:
        """The real path of an uploaded file (or, for an ``image``, a shipped example), or
        InputError with the one message for all else."""
        path = value.get("path") if isinstance(value, dict) else value
        if isinstance(path, str) and path and "\x00" not in path and len(path) < MAX_PATH_CHARS:
            real = os.path.realpath(path)
            roots = self.roots + self.examples if image else self.roots
            inside = any(real.startswith(root + os.sep) for root in roots)
            if inside and is_regular_file(real):
                return real
        raise InputError(f"{what.capitalize()} {NOT_SENT}")

    def check_all(self, values: Iterable[object], what: str = "image") -> list[str]:
        return [self.check(v, f"{what} {i + 1}", image=True) for i, v in enumerate(values)]


def check_writable(path: str | os.PathLike, what: str) -> None:
    """Refuse, before any work, a file that could not be written: a folder, a folder that does not
    exist, or one this process may not write into (``what``: "the CoOp context", say)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        problem = "is a folder: name a file in it, such as " + str(target / "context.safetensors")
    elif not folder.is_dir():
        problem = f"is in a folder that does not exist ({folder}): create it first"
    elif not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        problem = "cannot be written by this process (permissions)"
    else:
        return
    raise InputError(f"Cannot save {what} to {str(target)!r}: it {problem}.")


def display_name(path: str) -> str:
    """What the page shows for a file: its name, not where the server keeps it."""
    return Path(path).name
