"""Layer tar reading with Go ``archive/tar`` semantics (the reference reads layers with it).

Contract shared by the reader (this module) and the ext4 builder: ``iter_entries`` yields
``TarEntry`` objects in archive order; an entry's data must be consumed (or skipped) before
the next entry is requested. See ../shared/golden/NOTES.md §2 for the semantics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, Optional, Protocol

#: (seconds, nanoseconds 0..999_999_999) of a Go time.Time; ``None`` is Go's zero time
Timespec = Optional[tuple[int, int]]


class DataReader(Protocol):
    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Fill ``buffer`` with the next bytes of the entry's (sparse-expanded) data; 0 at end."""


@dataclass
class TarEntry:
    name: bytes                 # raw name as Go sees it (PAX path / GNU long name / prefix+name)
    typeflag: bytes             # one byte, e.g. b"0", b"5", b"\0", b"g"
    mode: int
    uid: int
    gid: int
    size: int                   # logical size of the data (after sparse expansion)
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    mtime: Timespec = None
    atime: Timespec = None
    ctime: Timespec = None
    xattrs: dict[bytes, bytes] = field(default_factory=dict)   # from SCHILY.xattr.* only
    data: DataReader | None = None
