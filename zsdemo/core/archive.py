"""Safe extraction of an uploaded zip of labelled images.

Every entry is checked before anything is written; one bad entry refuses the whole archive, with
a message saying which entry and why:
- a path that is absolute (``/x``, ``\\x``, ``C:x``) or climbs out (``..``) of the folder;
- a symbolic link (which could point anywhere once extracted), or an encrypted entry;
- more than ``max_files`` entries, or more than ``max_bytes`` uncompressed in all.
The sizes in the archive's directory can lie (a zip bomb), so extraction counts the bytes it
actually writes and stops at the same limit.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import InputError
from .files import is_regular_file
from .limits import LIMITS

_CHUNK = 2**20
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeArchive(InputError):
    """The zip was refused: nothing of it was extracted."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int
    max_bytes: int          # uncompressed, all entries together

    @classmethod
    def current(cls) -> "ArchiveLimits":
        return cls(LIMITS.zip_files, LIMITS.zip_mb * 2**20)


def _safe_parts(name: str) -> tuple[str, ...]:
    """The entry's path parts, or UnsafeArchive when it is absolute or climbs out."""
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise UnsafeArchive(f"The zip was refused: entry {name[:200]!r} has an absolute path. "
                            "Zip the folder with paths relative to it.")
    parts = tuple(p for p in PurePosixPath(path).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchive(f"The zip was refused: entry {name[:200]!r} points outside the archive's folder "
                            "('..'). Zip the folder with paths relative to it.")
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_zip(archive: zipfile.ZipFile, limits: ArchiveLimits | None = None,
              ) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """The entries to extract (files only) with their safe paths; UnsafeArchive on any bad entry."""
    limits = limits or ArchiveLimits.current()
    infos = archive.infolist()
    if len(infos) > limits.max_files:
        raise UnsafeArchive(f"The zip was refused: it has {len(infos)} entries; at most {limits.max_files} "
                            "are allowed. Evaluate a smaller sample, or use the command line on a folder.")
    total = 0
    out = []
    for info in infos:
        parts = _safe_parts(info.filename)
        if _is_symlink(info):
            raise UnsafeArchive(f"The zip was refused: entry {info.filename[:200]!r} is a symbolic link. "
                                "Zip the files themselves.")
        if info.flag_bits & 0x1:
            raise UnsafeArchive(f"The zip was refused: entry {info.filename[:200]!r} is encrypted.")
        total += info.file_size
        if total > limits.max_bytes:
            raise UnsafeArchive(f"The zip was refused: its files add up to more than {limits.max_bytes // 2**20} MB "
                                "uncompressed. Evaluate a smaller sample, or use the command line on a folder.")
        if not info.is_dir() and parts:
            out.append((info, parts))
    return out


def count_entries(path: str | Path, suffixes: frozenset[str]) -> int:
    """How many of a zip's entries end in one of ``suffixes``, from its central directory alone
    (nothing is extracted); 0 for a file that is not a readable zip (``extract_zip`` says why)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(1 for info in archive.infolist() if Path(info.filename).suffix.lower() in suffixes)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, UnicodeDecodeError):
        return 0


@dataclass
class Extracted:
    root: Path
    damaged: list[tuple[str, str]] = field(default_factory=list)    # (entry, why) not extracted


def extract_zip(path: str | Path, dest: str | Path, limits: ArchiveLimits | None = None) -> Extracted:
    """Check, then extract the zip at ``path`` into the (empty, caller-owned) folder ``dest``.

    Refused archives may leave partial files in ``dest`` (the caller's temporary folder).
    """
    limits = limits or ArchiveLimits.current()
    result = Extracted(Path(dest))
    try:
        archive = zipfile.ZipFile(path)
    except UnicodeDecodeError:  # an entry flagged as UTF-8 whose name is not
        raise InputError("The zip was refused: an entry's name is flagged as UTF-8 but is not valid UTF-8. "
                         "Zip the folder again with a current tool.") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise InputError(f"This file is not a readable zip archive ({e}). Upload a .zip of the folder.") from None
    with archive:
        entries = check_zip(archive, limits)
        written = 0
        for info, parts in entries:
            target = result.root.joinpath(*parts)
            try:
                # A file and a folder of the same name, or a name the file system refuses (too
                # long), fail here: that entry is reported as damaged, the rest extracted.
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > limits.max_bytes:
                            raise UnsafeArchive(
                                f"The zip was refused: it expands to more than {limits.max_bytes // 2**20} MB "
                                "(its directory understates the sizes).")
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as e:
                # A damaged entry is reported and skipped like a corrupt image; the rest is used.
                if is_regular_file(target):
                    target.unlink(missing_ok=True)
                why = e.strerror if isinstance(e, OSError) and e.strerror else (str(e) or type(e).__name__)
                result.damaged.append(("/".join(parts)[:300], why))
    return result
