"""Layer tar reading with Go ``archive/tar`` semantics (the reference reads layers with it).

Contract shared by the reader (this module) and the ext4 builder: ``iter_entries`` yields
``TarEntry`` objects in archive order; an entry's data must be consumed (or skipped) before
the next entry is requested. See ../shared/golden/NOTES.md §2 for the semantics.

Every quirk of Go's reader changes the ext4 image and therefore the root hash, so this module
follows it field by field: which header formats are recognised, how numbers, PAX records and
times are parsed, how sparse files expand, where the archive ends and which inputs are errors.
It reads strictly sequentially and never past the end-of-archive marker, holds no entry data
in memory, and bounds every piece of metadata the way Go does (1 MiB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, Optional, Protocol
from zlib import adler32

from azext_confcom.errors import ArchiveError

#: (seconds, nanoseconds 0..999_999_999) of a Go time.Time; ``None`` is Go's zero time
Timespec = Optional[tuple[int, int]]


class DataReader(Protocol):
    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Fill ``buffer`` with the next bytes of the entry's (sparse-expanded) data; 0 at end.

        The buffer is filled completely unless the entry's data ends first. Errors Go reports
        while reading (truncated data, sparse data that does not match its map) are raised
        here, so a consumer that mirrors tar2ext4's ``io.Copy`` calls this at least once for
        every file it creates, even an empty one.
        """


@dataclass
class TarEntry:
    name: bytes                 # raw name as Go sees it (PAX path / GNU long name / prefix+name)
    typeflag: bytes             # one byte, e.g. b"0", b"5", b"g"; Go turns NUL into b"0"/b"5"
    mode: int
    uid: int
    gid: int
    size: int                   # logical size of the data (after sparse expansion); 0 for
    #                             header-only types (hard link, symlink, devices, dir, fifo)
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    mtime: Timespec = None
    atime: Timespec = None
    ctime: Timespec = None
    xattrs: dict[bytes, bytes] = field(default_factory=dict)   # from SCHILY.xattr.* only
    data: DataReader | None = None


BLOCK_SIZE = 512
#: Go's maxSpecialFileSize: limit of a PAX header, a GNU long name/link and a sparse map
MAX_SPECIAL_FILE_SIZE = 1 << 20
_MAX_SPARSE_ENTRIES = 1 << 20          # Go's maxSparseFileEntries
_INT64_MAX = (1 << 63) - 1
_GO_ZERO_TIME = -62135596800           # Unix seconds of 0001-01-01T00:00:00Z (time.Time{})
_HEADER_ONLY = frozenset(b"123456")    # link, symlink, char, block, dir, fifo: no data section
_ZERO_BLOCK = bytes(BLOCK_SIZE)
_ONE_BYTE = tuple(bytes([b]) for b in range(256))   # typeflag byte -> bytes, without a new object
_ZEROS = memoryview(bytes(1 << 20))
_HIGH_BYTES = bytes(range(0x80, 0x100))
_DECIMAL = re.compile(rb"[+-]?[0-9]+")  # strconv.ParseInt(s, 10, 64) syntax
#: a numeric field Go's parseOctal accepts: digits, then blanks or a NUL and anything after it
_OCTAL_FIELD = re.compile(rb"[ \x00]*([0-7]+)(?:\x00.*|[ \x00]*)", re.DOTALL)
#: the numeric fields every common writer (Go, GNU tar, bsdtar, Python) produces: zero-padded
#: octal ending in NUL or space; mode, uid, gid, size, mtime, then the checksum
_PLAIN_NUMBERS = re.compile(rb"([0-7]{7})[ \x00]([0-7]{7})[ \x00]([0-7]{7})[ \x00]([0-7]{11})[ \x00]"
                            rb"([0-7]{11})[ \x00](?:([0-7]{6})\x00 |([0-7]{7})[ \x00])")
#: devmajor and devminor in the same plain form, or left all NUL
_PLAIN_DEVICE = re.compile(rb"(?:([0-7]{7})[ \x00]|\x00{8})(?:([0-7]{7})[ \x00]|\x00{8})")
_XATTR_PREFIX = b"SCHILY.xattr."
_SPARSE_MAP = b"GNU.sparse.map"

_V7, _USTAR, _GNU, _STAR = "V7", "USTAR", "GNU", "STAR"

_HINT = ("The archive is damaged, truncated or was not written by a tar tool. Export or pull "
         "the image again; if it was built by a custom tool, check that tool's tar output.")


class _Invalid(Exception):
    """A field or record that Go rejects with ErrHeader; turned into ArchiveError with context."""


# -- field parsers (strconv.go) ---------------------------------------------------------------

def _c_string(b: bytes) -> bytes:
    """Bytes up to the first NUL (Go's parseString)."""
    nul = b.find(0)
    return b if nul < 0 else b[:nul]


def _parse_octal(b: bytes) -> int:
    """Go's parseOctal: trim spaces/NULs, cut at the first NUL, then strictly octal digits."""
    m = _OCTAL_FIELD.fullmatch(b)
    if m is None:
        if not b.strip(b" \x00"):
            return 0
        raise _Invalid(f"invalid octal number {b!r}")
    x = int(m.group(1), 8)
    if x >= 1 << 64:
        raise _Invalid(f"octal number {b!r} overflows 64 bits")
    return x - (1 << 64) if x >= 1 << 63 else x      # Go converts uint64 to int64


def _parse_numeric(b: bytes) -> int:
    """Octal or GNU base-256 (two's complement when the second-highest bit is set)."""
    if b and b[0] & 0x80:
        bits = 8 * len(b)
        x = int.from_bytes(b, "big")
        negative = bool(b[0] & 0x40)
        if negative:
            x ^= (1 << bits) - 1
        x &= (1 << (bits - 1)) - 1                   # drop the base-256 marker bit
        if x > _INT64_MAX:
            raise _Invalid(f"base-256 number {b.hex()} overflows 64 bits")
        return -x - 1 if negative else x
    return _parse_octal(b)


def _field(block: bytes, start: int, end: int, label: str) -> int:
    """A numeric header field, with its name in the error."""
    try:
        return _parse_numeric(block[start:end])
    except _Invalid as exc:
        raise _Invalid(f"{label} field: {exc}") from None


def _parse_int(v: bytes) -> int:
    """strconv.ParseInt(v, 10, 64)."""
    if not _DECIMAL.fullmatch(v):
        raise _Invalid(f"invalid decimal number {v[:40]!r}")
    if len(v.lstrip(b"+-0")) > 19:
        raise _Invalid(f"decimal number {v[:40]!r} overflows 64 bits")
    x = int(v)
    if not -_INT64_MAX - 1 <= x <= _INT64_MAX:
        raise _Invalid(f"decimal number {v!r} overflows 64 bits")
    return x


def _unix(sec: int, nsec: int) -> Timespec:
    """Go time.Unix(sec, nsec): normalised, and the zero time reads as absent."""
    sec, nsec = sec + nsec // 1_000_000_000, nsec % 1_000_000_000
    sec = ((sec + (1 << 63)) % (1 << 64)) - (1 << 63)
    return None if (sec, nsec) == (_GO_ZERO_TIME, 0) else (sec, nsec)


def _parse_pax_time(v: bytes) -> Timespec:
    """Decimal seconds with an optional fraction (first 9 digits); '-' makes it negative too."""
    secs, dot, frac = v.partition(b".")
    sec = _parse_int(secs)
    if not frac:
        return _unix(sec, 0)
    if not frac.isdigit():
        raise _Invalid(f"invalid PAX time {v!r}")
    nsec = int(frac[:9].ljust(9, b"0"))
    return _unix(sec, -nsec if secs.startswith(b"-") else nsec)


def _parse_pax(data: bytes) -> dict[bytes, bytes]:
    """PAX extended header records ("%d %s=%s\\n"); GNU sparse 0.0 pairs become GNU.sparse.map."""
    records: dict[bytes, bytes] = {}
    sparse_map: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        sp = data.find(b" ", pos)
        if sp < 0:
            raise _Invalid("PAX record without a length")
        length_field = data[pos:sp]
        try:
            n = _parse_int(length_field)
        except _Invalid:
            raise _Invalid(f"PAX record length {length_field[:20]!r} is not a number") from None
        if n < 5 or n > end - pos or n <= len(length_field) + 1:
            raise _Invalid(f"PAX record length {n} is out of range")
        if data[pos + n - 1] != 0x0A:
            raise _Invalid("PAX record does not end in a newline")
        key, eq, value = data[sp + 1:pos + n - 1].partition(b"=")
        if not eq or not key:
            raise _Invalid("PAX record without a key")
        if key in (b"path", b"linkpath", b"uname", b"gname"):
            if b"\0" in value:
                raise _Invalid(f"PAX record {key.decode()} contains a NUL byte")
        elif b"\0" in key:
            raise _Invalid("PAX record key contains a NUL byte")
        pos += n
        if key in (b"GNU.sparse.offset", b"GNU.sparse.numbytes"):
            expected = b"GNU.sparse.offset" if len(sparse_map) % 2 == 0 else b"GNU.sparse.numbytes"
            if key != expected or b"," in value:
                raise _Invalid("GNU sparse 0.0 records out of order")
            sparse_map.append(value)
        else:
            records[key] = value
    if sparse_map:
        records[_SPARSE_MAP] = b",".join(sparse_map)
    return records


def _byte_sum(blk: bytes) -> int:
    """sum(blk) of a 512-byte block, 5x faster: the low half of Adler-32 is 1 + the byte sum
    modulo 65521, and 256 bytes sum to at most 65280, so each half's sum is exact."""
    return (adler32(blk[:256]) & 0xFFFF) + (adler32(blk[256:]) & 0xFFFF) - 2


def _plain_numbers(blk: bytes) -> tuple[int, int, int, int, int] | None:
    """Fast path: (mode, uid, gid, size, mtime) when they are plain octal and the unsigned
    checksum matches; None means "use the general parser" (which may still accept it)."""
    m = _PLAIN_NUMBERS.match(blk, 100)
    if m is None or int(m[6] or m[7], 8) != _byte_sum(blk) - sum(blk[148:156]) + 256:
        return None
    return int(m[1], 8), int(m[2], 8), int(m[3], 8), int(m[4], 8), int(m[5], 8)


def _magic_format(blk: bytes) -> str:
    magic = blk[257:263]
    if magic == b"ustar\x00":
        return _STAR if blk[508:512] == b"tar\x00" else _USTAR
    if magic == b"ustar " and blk[263:265] == b" \x00":
        return _GNU
    return _V7


def _header_format(blk: bytes) -> str | None:
    """Go's getFormat: None when the checksum (unsigned or signed byte sum) does not match."""
    try:
        value = _parse_octal(blk[148:156])
    except _Invalid:
        return None
    unsigned = sum(blk) - sum(blk[148:156]) + 8 * 0x20
    high = len(blk) - len(blk.translate(None, _HIGH_BYTES))
    high -= 8 - len(blk[148:156].translate(None, _HIGH_BYTES))
    if value not in (unsigned, unsigned - 256 * high):
        return None
    return _magic_format(blk)


# -- streams ----------------------------------------------------------------------------------

class _Source:
    """The archive stream: sequential full reads and an offset for error messages.

    Small entries are read ahead in one call (their data, padding and the next header),
    which saves two reads per entry; ``prefetch`` never asks for bytes Go's reader would
    not read next, and a read error met while reading ahead is raised only when the bytes
    it stands for are consumed, so errors surface at the same point as without it.
    """

    #: entries up to this many bytes (data + padding + next header) are read in one call
    READAHEAD = 64 << 10

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._readinto = getattr(stream, "readinto", None)
        self._ahead = bytearray(self.READAHEAD)
        self._view = memoryview(self._ahead)
        self._start = self._end = 0        # unconsumed read-ahead bytes: _ahead[_start:_end]
        self._error: BaseException | None = None   # met while reading ahead, not yet due
        self._eof = False                  # the stream ended while reading ahead
        self.offset = 0

    def _read(self, buf: memoryview) -> int:
        """One read from the stream (may be short)."""
        if self._readinto is not None:
            return self._readinto(buf) or 0
        chunk = self._stream.read(len(buf))
        buf[:len(chunk)] = chunk
        return len(chunk)

    def prefetch(self, n: int) -> None:
        """Make the next ``n`` bytes (at most READAHEAD) available without further reads."""
        have = self._end - self._start
        if n <= have or n > self.READAHEAD or self._eof or self._error is not None:
            return
        if self._start:
            self._ahead[:have] = self._view[self._start:self._end]
            self._start, self._end = 0, have
        try:
            while self._end < n:
                got = self._read(self._view[self._end:n])
                if not got:
                    self._eof = True
                    break
                self._end += got
        except Exception as exc:  # raised where these bytes are consumed, as without read-ahead
            self._error = exc

    def fill(self, buf: memoryview) -> int:
        """Read until ``buf`` is full or the stream ends; the number of bytes read."""
        want = len(buf)
        got = min(want, self._end - self._start)
        if got:
            buf[:got] = self._view[self._start:self._start + got]
            self._start += got
        while got < want:
            if self._error is not None:
                error, self._error = self._error, None
                self.offset += got
                raise error
            if self._eof:
                break
            n = self._read(buf[got:])
            if not n:
                break
            got += n
        self.offset += got
        return got

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer only at end of stream); one copy when read ahead."""
        start = self._start
        if self._end - start >= n:
            self._start = start + n
            self.offset += n
            return bytes(self._view[start:start + n])
        buf = bytearray(n)
        return bytes(buf[:self.fill(memoryview(buf))])

    def skip(self, n: int) -> int:
        """Read and drop up to ``n`` bytes; the number dropped (less only at end of stream)."""
        done = min(n, self._end - self._start)
        self._start += done
        self.offset += done
        if done < n:
            scratch = memoryview(bytearray(min(n - done, 1 << 20)))
            while done < n:
                step = min(n - done, len(scratch))
                got = self.fill(scratch[:step])
                done += got
                if got < step:
                    break
        return done


class _Physical:
    """The bytes an entry occupies in the archive (Go's regFileReader)."""

    def __init__(self, reader: _Reader, size: int) -> None:
        self._reader = reader
        self.remaining = size

    def _check_current(self) -> None:
        if self._reader._current is not self:
            raise RuntimeError("tar entry data read after the archive moved to the next entry")

    def readinto(self, buffer: memoryview | bytearray) -> int:
        self._check_current()
        view = memoryview(buffer).cast("B")
        if len(view) > self.remaining:
            view = view[:self.remaining]
        if not view:
            return 0
        got = self._reader._src.fill(view)
        self.remaining -= got
        if got < len(view):
            raise self._reader._truncated("data")
        return got

    def read_exact(self, n: int) -> bytes:
        """``n`` bytes of this entry's data; an error if the entry or the stream has fewer."""
        buf = bytearray(n)
        if n > self.remaining:
            self.readinto(memoryview(buf)[:self.remaining])
            raise self._reader._invalid("the entry's data is shorter than its sparse map says")
        self.readinto(buf)
        return bytes(buf)


class _SparseData:
    """Expands a sparse entry: data fragments from the archive, holes as zeros."""

    def __init__(self, physical: _Physical, holes: list[tuple[int, int]], size: int) -> None:
        self._physical = physical
        self._holes = holes            # normalised: sorted, non-empty but the last, end == size
        self._hole = 0
        self._pos = 0
        self._size = size

    def readinto(self, buffer: memoryview | bytearray) -> int:
        physical = self._physical
        physical._check_current()
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        done = 0
        while done < want:
            start, end = self._holes[self._hole]
            if self._pos < start:                    # in a data fragment
                n = min(want - done, start - self._pos)
                if n > physical.remaining:
                    raise physical._reader._invalid(
                        "a sparse map references data the entry does not contain")
                physical.readinto(view[done:done + n])
            else:                                    # in a hole
                n = min(want - done, end - self._pos)
                for at in range(done, done + n, len(_ZEROS)):
                    step = min(done + n - at, len(_ZEROS))
                    view[at:at + step] = _ZEROS[:step]
            done += n
            self._pos += n
            if self._pos >= end and self._hole < len(self._holes) - 1:
                self._hole += 1
        if self._pos == self._size and physical.remaining > 0:
            raise physical._reader._invalid(
                "the entry contains data its sparse map does not reference")
        return done


class _Header:
    """One parsed header block plus what PAX / GNU metadata headers change in it."""

    __slots__ = ("block", "format", "typeflag", "name", "linkname", "size", "mode", "uid",
                 "gid", "mtime", "atime", "ctime", "devmajor", "devminor")

    def __init__(self, block: bytes, fmt: str, name: bytes,
                 numbers: tuple[int, int, int, int, int] | None = None) -> None:
        """``name``: the name field; ``numbers``: (mode, uid, gid, size, mtime) already parsed
        by ``_plain_numbers``."""
        self.block = block
        self.format = fmt
        self.typeflag = block[156]
        self.name = name
        self.linkname = _c_string(block[157:257]) if block[157] else b""
        if numbers is None:
            self.size = _field(block, 124, 136, "size")
            self.mode = _field(block, 100, 108, "mode")
            self.uid = _field(block, 108, 116, "uid")
            self.gid = _field(block, 116, 124, "gid")
            self.mtime = _unix(_field(block, 136, 148, "mtime"), 0)
        else:                    # plain octal: below 2**33, never Go's zero time
            self.mode, self.uid, self.gid, self.size, mtime = numbers
            self.mtime = (mtime, 0)
        self.atime: Timespec = None
        self.ctime: Timespec = None
        self.devmajor = self.devminor = 0
        if fmt == _V7:
            return
        device = _PLAIN_DEVICE.match(block, 329)
        if device is None:
            self.devmajor = _field(block, 329, 337, "devmajor")
            self.devminor = _field(block, 337, 345, "devminor")
        else:
            self.devmajor = int(device[1], 8) if device[1] else 0
            self.devminor = int(device[2], 8) if device[2] else 0
        prefix = b""
        if fmt == _USTAR:
            prefix = _c_string(block[345:500]) if block[345] else b""
        elif fmt == _STAR:
            prefix = _c_string(block[345:476])
            self.atime = _unix(_field(block, 476, 488, "atime"), 0)
            self.ctime = _unix(_field(block, 488, 500, "ctime"), 0)
        else:
            try:
                if block[345]:
                    self.atime = _unix(_parse_numeric(block[345:357]), 0)
                if block[357]:
                    self.ctime = _unix(_parse_numeric(block[357:369]), 0)
            except _Invalid:
                # Files from pre-1.8 Go writers put a USTAR prefix there; Go falls back to it.
                self.atime = self.ctime = None
                candidate = _c_string(block[345:500])
                if candidate.isascii():
                    prefix = candidate
        if prefix:
            self.name = prefix + b"/" + self.name

    def merge_pax(self, records: dict[bytes, bytes]) -> None:
        """Go's mergePAX: known records override the header unless their value is empty."""
        for key, value in records.items():
            if value:
                try:
                    self._merge_record(key, value)
                except _Invalid as exc:
                    raise _Invalid(f"PAX record {key.decode('ascii', 'replace')}: {exc}") from None

    def _merge_record(self, key: bytes, value: bytes) -> None:
        """One non-empty record; the ones Go does not know about change nothing."""
        if key == b"path":
            self.name = value
        elif key == b"linkpath":
            self.linkname = value
        elif key == b"uid":
            self.uid = _parse_int(value)
        elif key == b"gid":
            self.gid = _parse_int(value)
        elif key == b"mtime":
            self.mtime = _parse_pax_time(value)
        elif key == b"atime":
            self.atime = _parse_pax_time(value)
        elif key == b"ctime":
            self.ctime = _parse_pax_time(value)
        elif key == b"size":
            self.size = _parse_int(value)


def _xattrs(records: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Extended attributes as tar2ext4 takes them: every SCHILY.xattr.* record, empty ones too."""
    return {k[len(_XATTR_PREFIX):]: v for k, v in records.items() if k.startswith(_XATTR_PREFIX)}


def _validate_sparse(entries: list[tuple[int, int]], size: int) -> bool:
    if size < 0:
        return False
    prev_end = 0
    for offset, length in entries:
        if offset < 0 or length < 0 or offset > _INT64_MAX - length:
            return False
        if offset + length > size or prev_end > offset:
            return False
        prev_end = offset + length
    return True


def _invert_sparse(datas: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Data fragments -> holes as (start, end); adjacent holes merge, only the last may be empty."""
    holes = []
    hole_start = 0
    for offset, length in datas:
        if length == 0:
            continue
        if offset > hole_start:
            holes.append((hole_start, offset))
        hole_start = offset + length
    holes.append((hole_start, size))
    return holes


def _sparse_count(v: bytes) -> int:
    """Number of sparse entries, parsed as Go does (native int, 2*n must not overflow)."""
    n = _parse_int(v)
    if n < 0 or n >= 1 << 62:
        raise _Invalid(f"invalid sparse entry count {v!r}")
    return n


# -- the reader (reader.go) -------------------------------------------------------------------

class _Reader:
    """Go's tar.Reader.Next, one entry at a time."""

    def __init__(self, stream: BinaryIO) -> None:
        self._src = _Source(stream)
        self._none = _Physical(self, 0)     # "no entry data": read by no one, shared
        self._current: _Physical = self._none
        self._pad = 0
        self._entry = 0                 # number of entries returned so far
        self._header_offset = 0         # offset of the header being processed
        self._name = b""                # name of the entry being processed, for messages

    # errors
    def _where(self) -> str:
        where = f"header at byte {self._header_offset}, entry {self._entry + 1}"
        if self._name:
            where += f" ({self._name.decode('utf-8', 'backslashreplace')!r})"
        return where

    def _invalid(self, problem: str) -> ArchiveError:
        return ArchiveError(f"invalid tar archive: {problem} ({self._where()})", hint=_HINT)

    def _truncated(self, what: str) -> ArchiveError:
        return ArchiveError(f"tar archive is truncated: the stream ends inside the {what} "
                            f"({self._where()}, stream offset {self._src.offset})", hint=_HINT)

    # low level
    def _read_block(self, what: str = "header") -> bytes | None:
        """One 512-byte block; None at a clean end of stream."""
        block = self._src.read(BLOCK_SIZE)
        if not block:
            return None
        if len(block) < BLOCK_SIZE:
            raise self._truncated(what)
        return block

    def _read_header(self) -> _Header | None:
        """The next header, or None at the end of the archive (two zero blocks or EOF)."""
        self._header_offset = self._src.offset
        self._name = b""
        block = self._read_block()
        if block is None:
            return None
        if block == _ZERO_BLOCK:
            block = self._read_block()
            if block is None or block == _ZERO_BLOCK:
                return None
            self._header_offset += BLOCK_SIZE
            raise self._invalid("a zero block is followed by a non-zero block")
        numbers = _plain_numbers(block)
        fmt = _header_format(block) if numbers is None else _magic_format(block)
        if fmt is None:
            raise self._invalid("header checksum mismatch (not a tar header)")
        self._name = _c_string(block[:100])
        return _Header(block, fmt, self._name, numbers)

    def _set_data(self, typeflag: int, size: int) -> None:
        """Go's handleRegularFile: header-only types have no data section."""
        physical = 0 if typeflag in _HEADER_ONLY else size
        if physical < 0:
            raise self._invalid(f"negative size {physical}")
        self._current = _Physical(self, physical)
        self._pad = -physical % BLOCK_SIZE
        self._src.prefetch(physical + self._pad + BLOCK_SIZE)   # data and the next header

    def _read_special(self) -> bytes:
        """Data of a PAX header or GNU long name/link, limited like Go (1 MiB)."""
        buf = bytearray(min(MAX_SPECIAL_FILE_SIZE + 1, self._current.remaining))
        self._current.readinto(buf)
        if len(buf) > MAX_SPECIAL_FILE_SIZE:
            raise self._invalid(f"metadata entry larger than {MAX_SPECIAL_FILE_SIZE} bytes "
                                "(PAX header or GNU long name)")
        return bytes(buf)

    def _skip_rest(self) -> bool:
        """Discard the unread data and padding of the current entry; False at end of stream."""
        current = self._current
        if current.remaining:
            want = current.remaining
            current.remaining = 0
            if self._src.skip(want) < want:
                raise self._truncated("data")
        self._current = self._none
        pad, self._pad = self._pad, 0
        return self._src.skip(pad) == pad

    # sparse maps
    def _old_gnu_sparse(self, header: _Header) -> list[tuple[int, int]]:
        if header.format != _GNU:
            raise self._invalid("typeflag 'S' (old GNU sparse) in a non-GNU header")
        header.size = _parse_numeric(header.block[483:495])
        entries: list[tuple[int, int]] = []
        area, count, total = header.block[386:483], 4, 97
        while total < MAX_SPECIAL_FILE_SIZE:
            for i in range(count):
                item = area[24 * i:24 * i + 24]
                if item[0] == 0:
                    break
                if len(entries) >= _MAX_SPARSE_ENTRIES:
                    raise self._invalid("sparse map too long")
                entries.append((_parse_numeric(item[:12]), _parse_numeric(item[12:])))
            if not area[24 * count]:
                return entries
            area = self._read_block("sparse map")
            if area is None:
                raise self._truncated("sparse map")
            count, total = 21, total + BLOCK_SIZE
        raise self._invalid("sparse map too long")

    def _pax_sparse(self, header: _Header, records: dict[bytes, bytes]) \
            -> list[tuple[int, int]] | None:
        major, minor = records.get(b"GNU.sparse.major", b""), records.get(b"GNU.sparse.minor", b"")
        if major == b"0" and minor in (b"0", b"1"):
            version_1 = False
        elif major == b"1" and minor == b"0":
            version_1 = True
        elif major or minor or not records.get(_SPARSE_MAP):
            return None                              # unknown version / not sparse
        else:
            version_1 = False
        if records.get(b"GNU.sparse.name"):
            header.name = records[b"GNU.sparse.name"]
            self._name = header.name
        size = records.get(b"GNU.sparse.size") or records.get(b"GNU.sparse.realsize")
        if size:
            header.size = _parse_int(size)
        if version_1:
            return self._sparse_map_1x0()
        count = _sparse_count(records.get(b"GNU.sparse.numblocks", b""))
        numbers = records.get(_SPARSE_MAP, b"")
        fields = numbers.split(b",") if numbers else []
        if len(fields) != 2 * count:
            raise self._invalid("GNU.sparse.map does not match GNU.sparse.numblocks")
        return [(_parse_int(fields[i]), _parse_int(fields[i + 1]))
                for i in range(0, len(fields), 2)]

    def _sparse_map_1x0(self) -> list[tuple[int, int]]:
        """GNU sparse 1.0: decimal lines at the start of the data, padded to a block."""
        text = bytearray()
        pos = newlines = total = 0

        def feed(n: int) -> None:
            nonlocal newlines, total
            while newlines < n:
                total += BLOCK_SIZE
                if total > MAX_SPECIAL_FILE_SIZE:
                    raise self._invalid("sparse map too long")
                block = self._current.read_exact(BLOCK_SIZE)
                text.extend(block)
                newlines += block.count(b"\n")

        def token() -> bytes:
            nonlocal pos, newlines
            end = text.index(b"\n", pos)
            tok, pos = bytes(text[pos:end]), end + 1
            newlines -= 1
            return tok

        feed(1)
        count = _sparse_count(token())
        feed(2 * count)
        return [(_parse_int(token()), _parse_int(token())) for _ in range(count)]

    # one entry
    def next(self) -> TarEntry | None:
        try:
            return self._next()
        except _Invalid as exc:
            raise self._invalid(str(exc)) from None

    def _next(self) -> TarEntry | None:
        records: dict[bytes, bytes] = {}
        long_name = long_link = b""
        while True:
            if not self._skip_rest():
                return None
            header = self._read_header()
            if header is None:
                return None
            self._set_data(header.typeflag, header.size)
            typeflag = header.typeflag
            if typeflag in b"xg":
                records = _parse_pax(self._read_special())
                if typeflag == ord("g"):
                    return self._global_entry(header, records)
                continue
            if typeflag in b"LK":
                value = _c_string(self._read_special())
                if typeflag == ord("L"):
                    long_name = value
                else:
                    long_link = value
                continue
            return self._entry_from(header, records, long_name, long_link)

    def _global_entry(self, header: _Header, records: dict[bytes, bytes]) -> TarEntry:
        """A PAX 'g' header is an entry of its own: name, typeflag and records only."""
        try:
            header.merge_pax(records)
        except _Invalid:
            records = {}                             # Go's mergePAX fails before keeping them
        self._entry += 1
        return TarEntry(name=header.name, typeflag=b"g", mode=0, uid=0, gid=0, size=0,
                        xattrs=_xattrs(records), data=self._current)

    def _entry_from(self, header: _Header, records: dict[bytes, bytes], long_name: bytes,
                    long_link: bytes) -> TarEntry:
        if records:
            header.merge_pax(records)
        if long_name:
            header.name = long_name
        if long_link:
            header.linkname = long_link
        legacy = header.typeflag == 0
        if legacy:                                   # legacy regular file / directory
            header.typeflag = ord("5") if header.name.endswith(b"/") else ord("0")
        self._name = header.name
        if records or legacy:      # size or kind may have changed: set the data section up again
            self._set_data(header.typeflag, header.size)
        data: DataReader = self._current
        if header.typeflag == ord("S"):
            sparse: list[tuple[int, int]] | None = self._old_gnu_sparse(header)
        else:
            sparse = self._pax_sparse(header, records) if records else None
        size = 0 if header.typeflag in _HEADER_ONLY else header.size
        if sparse is not None:
            if header.typeflag in _HEADER_ONLY or not _validate_sparse(sparse, header.size):
                raise self._invalid("invalid sparse map")
            size = header.size
            data = _SparseData(self._current, _invert_sparse(sparse, size), size)
        self._entry += 1
        return TarEntry(name=header.name, typeflag=_ONE_BYTE[header.typeflag], mode=header.mode,
                        uid=header.uid, gid=header.gid, size=size, linkname=header.linkname,
                        devmajor=header.devmajor, devminor=header.devminor, mtime=header.mtime,
                        atime=header.atime, ctime=header.ctime,
                        xattrs=_xattrs(records) if records else {}, data=data)


def iter_entries(stream: BinaryIO) -> Iterator[TarEntry]:
    """Entries of a layer tar in archive order, exactly as Go's archive/tar returns them.

    Reads ``stream`` sequentially (it may be a gzip stream or an HTTP body) and stops at the
    end-of-archive marker. Data an entry's consumer did not read is skipped when the next
    entry is requested. Raises ArchiveError for anything Go's reader rejects.
    """
    reader = _Reader(stream)
    while (entry := reader.next()) is not None:
        yield entry


class _Recorder:
    """Passes reads through and keeps a copy, so a probe can be replayed (bounded)."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.recorded = bytearray()

    def readinto(self, buffer: memoryview) -> int:
        room = self._limit - len(self.recorded)
        if room <= 0:
            raise _ProbeTooLong()
        view = memoryview(buffer)[:room]
        readinto = getattr(self._stream, "readinto", None)
        if readinto is not None:
            n = readinto(view) or 0
        else:
            chunk = self._stream.read(len(view))
            n = len(chunk)
            view[:n] = chunk
        self.recorded += view[:n]
        return n


class _ProbeTooLong(Exception):
    """The first entry's metadata headers exceed what a probe is willing to buffer."""


class _Replay:
    """Bytes already read from a stream, followed by the rest of that stream."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream
        self._readinto = getattr(stream, "readinto", None)

    def readinto(self, buffer: memoryview | bytearray) -> int:
        if not self._head and self._readinto is not None:    # the common case, once per read
            return self._readinto(buffer) or 0
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        chunk = self._stream.read(len(view))
        view[:len(chunk)] = chunk
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            head, self._head = bytes(self._head), memoryview(b"")
            return head + self._stream.read()
        buf = bytearray(size)
        n = self.readinto(buf)
        return bytes(buf[:n])


#: what probe_layer buffers at most: a few metadata headers of up to 1 MiB each
PROBE_LIMIT = 32 << 20


def probe_layer(stream: BinaryIO) -> tuple[bool, BinaryIO]:
    """Decide like the reference whether a (decompressed) image-tar entry is a layer tar.

    It is a layer when Go's first ``tar.Reader.Next()`` on it succeeds, or when that call reports
    the end of the archive and the blob starts with a 512-byte zero block (an empty layer). A
    0-byte blob is not a layer. Returns the verdict and a stream that yields the whole blob again
    (the bytes the probe consumed, then the rest), for ``iter_entries`` or a JSON decoder.
    """
    recorder = _Recorder(stream, PROBE_LIMIT)
    try:
        first = _Reader(recorder).next()     # type: ignore[arg-type]
        is_layer = first is not None or (len(recorder.recorded) >= BLOCK_SIZE
                                         and recorder.recorded[:BLOCK_SIZE] == _ZERO_BLOCK)
    except ArchiveError:
        is_layer = False
    except _ProbeTooLong:
        raise ArchiveError(f"the first entry of a tar archive has more than {PROBE_LIMIT} bytes "
                           "of metadata headers", hint=_HINT) from None
    return is_layer, _Replay(bytes(recorder.recorded), stream)  # type: ignore[return-value]
