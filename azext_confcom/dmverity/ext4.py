"""Layer tar -> ext4 image laid out exactly like hcsshim's tar2ext4/compactext4.

The ACI host mounts each layer as the ext4 image tar2ext4 builds from it, and the policy
pins the dm-verity root of that image, so every byte has to match (see
../shared/golden/NOTES.md §3). The image is never materialised: file data is hashed block
by block as it streams in; directories, the inode table and bitmaps are produced at the
end from the in-memory tree; the superblock and group descriptors (blocks 0..8) and
rewritten xattr blocks are patched into the hasher last.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Iterable, Optional, Sequence

from ..errors import ArchiveError, LayerConversionError
from .gosort import go_sort_slice
from .tarstream import TarEntry, Timespec
from .verity import BLOCK_SIZE, VerityHasher

MAX_DISK_SIZE = 128 << 30
MAX_FILE_SIZE = 128 << 30
MAX_LINKS = 65000
_MAX_BLOCKS = MAX_DISK_SIZE // BLOCK_SIZE
#: group descriptor area for 128 GiB: 1024 groups * 32 bytes = 8 blocks, after block 0
_GDT_BLOCKS = 8
_FIRST_DATA_BLOCK = 1 + _GDT_BLOCKS
_BLOCKS_PER_GROUP = 32768
_INODE_SIZE = 256
_INODES_PER_BLOCK = BLOCK_SIZE // _INODE_SIZE
_EXTENT_MAX_LEN = 32768
_LEAF_MAX_ENTRIES = (BLOCK_SIZE - 12) // 12
_ROOT_INO, _LOST_FOUND_INO, _FIRST_INO = 2, 11, 12
_COPY_CHUNK = 1 << 20
_ZEROS = memoryview(bytes(BLOCK_SIZE))

S_IFIFO, S_IFCHR, S_IFDIR, S_IFBLK, S_IFREG, S_IFLNK = (
    0o010000, 0o020000, 0o040000, 0o060000, 0o100000, 0o120000)
_TYPE_MASK = 0o170000
_TAR_TYPES = {b"5": S_IFDIR, b"2": S_IFLNK, b"3": S_IFCHR, b"4": S_IFBLK, b"6": S_IFIFO}
_DIRENT_TYPE = {S_IFREG: 1, S_IFDIR: 2, S_IFCHR: 3, S_IFBLK: 4, S_IFIFO: 5, S_IFLNK: 7}

_FLAG_HUGE_FILE, _FLAG_EXTENTS = 0x40000, 0x80000
_EXTENT_MAGIC = 0xF30A
_XATTR_MAGIC = 0xEA020000
_XATTR_INLINE_SPACE = 104 - 4 - 4
_XATTR_BLOCK_SPACE = BLOCK_SIZE - 32 - 4
_XATTR_PREFIXES = (
    (b"system.posix_acl_access", 2), (b"system.posix_acl_default", 3),
    (b"system.richacl", 8), (b"system.", 7), (b"user.", 1), (b"trusted.", 4),
    (b"security.", 6),
)
#: the 256-byte inode record; the last 104 bytes are the in-inode xattr area
_INODE = struct.Struct("<HHIIIIIHHIII60sIIIIHHHHHHHHIIIII104s")
_NO_INLINE_XATTRS = bytes(104)
_GROUP_DESC = struct.Struct("<IIIHHHHIHHHH")
#: directory entry header (inode, record length, name length, file type) and name padding
_DIRENT = struct.Struct("<IHBB")
_NAME_PAD = tuple(bytes(n) for n in range(4))
#: extent header + one extent (logical 0), as ``_extents`` would give for a short file
_ONE_EXTENT = struct.Struct("<HHHHIIHHI")


def _r4(n: int) -> int:
    return (n + 3) & ~3


# --- timestamps (NOTES §3.5) ----------------------------------------------------------

_GO_ZERO_UNIX = -62135596800


def encode_time(ts: Timespec) -> int:
    """Go time -> the 64-bit value whose halves go into the time and ``_extra`` fields."""
    if ts is None:
        return 0
    sec, nsec = ts
    sec += nsec // 1_000_000_000
    nsec %= 1_000_000_000
    if sec == _GO_ZERO_UNIX and nsec == 0:
        return 0
    if sec < -(1 << 31):
        return 0x80000000
    if sec > 0x3_7FFF_FFFF:
        return 0x3_7FFF_FFFF
    return ((sec & 0xFFFF_FFFF_FFFF_FFFF) | (nsec << 34)) & 0xFFFF_FFFF_FFFF_FFFF


def _roundtrip_time(value: int) -> int:
    """Decode a stored time the way compactext4's Stat does, then encode it again."""
    if value == 0:
        return 0
    sec = value & 0x3_FFFF_FFFF
    if 0x7FFF_FFFF < sec < 0x1_0000_0000:
        sec -= 1 << 32
    return encode_time((sec, value >> 34))


# --- extended attributes (NOTES §3.9) -------------------------------------------------

class _Xattr:
    __slots__ = ("name", "index", "stored", "value")

    def __init__(self, name: bytes, value: bytes) -> None:
        self.name, self.value = name, value
        for prefix, index in _XATTR_PREFIXES:
            if name.startswith(prefix):
                self.index, self.stored = index, name[len(prefix):]
                break
        else:
            self.index, self.stored = 0, name

    @property
    def cost(self) -> int:
        return 16 + _r4(len(self.stored)) + _r4(len(self.value))

    def hash(self) -> int:
        h = 0
        for c in self.stored:
            h = ((h << 5) ^ (h >> 27) ^ c) & 0xFFFFFFFF
        padded = self.value + bytes(-len(self.value) % 4)
        for (word,) in struct.iter_unpack("<I", padded):
            h = ((h << 16) ^ (h >> 16) ^ word) & 0xFFFFFFFF
        return h


def _block_order_less(a: _Xattr, b: _Xattr) -> bool:
    # compactext4's comparator, deliberately kept as is (not a strict weak order)
    return a.index < b.index or len(a.stored) < len(b.stored) or a.stored < b.stored


def _place_xattrs(xattrs: dict[bytes, bytes], name: bytes) -> tuple[list[_Xattr], list[_Xattr]]:
    inline: list[_Xattr] = []
    block: list[_Xattr] = []
    if not xattrs:
        return inline, block
    inline_free, block_free = _XATTR_INLINE_SPACE, _XATTR_BLOCK_SPACE
    for key in sorted(xattrs):
        x = _Xattr(key, xattrs[key])
        if x.cost <= inline_free:
            inline.append(x)
            inline_free -= x.cost
        elif x.cost <= block_free:
            block.append(x)
            block_free -= x.cost
        else:
            raise LayerConversionError(
                f"{_show(name)}: could not fit xattr {_show(key)}",
                hint="The ACI host stores at most 4060 bytes of xattrs per file outside the inode.")
    go_sort_slice(block, _block_order_less)
    return inline, block


def _pack_xattrs(entries: Sequence[_Xattr], area: bytearray, entries_at: int, offs_base: int) -> None:
    """Entries from ``entries_at`` upwards, values packed from the end downwards."""
    pos, end = entries_at, len(area)
    for x in entries:
        end -= _r4(len(x.value))
        area[end:end + len(x.value)] = x.value
        area[pos:pos + 16] = struct.pack("<BBHIII", len(x.stored), x.index, end - offs_base, 0,
                                         len(x.value), x.hash())
        area[pos + 16:pos + 16 + len(x.stored)] = x.stored
        pos += 16 + _r4(len(x.stored))


def _readback(entries: Sequence[_Xattr]) -> dict[bytes, bytes]:
    """What compactext4 reads back from stored entries: it stops at an empty stored name."""
    out: dict[bytes, bytes] = {}
    for x in entries:
        if not x.stored:
            break
        out[x.name] = x.value
    return out


# --- the inode tree -------------------------------------------------------------------

class _Inode:
    """One inode of the image being built; a directory holds its children by name."""

    __slots__ = ("number", "mode", "uid", "gid", "size", "atime", "ctime", "mtime", "crtime",
                 "links", "dev", "data_start", "data_blocks", "leaf_block", "xattr_block",
                 "inline_xattrs", "block_xattrs", "children", "target")

    def __init__(self, number: int, mode: int) -> None:
        self.number, self.mode = number, mode
        self.uid = self.gid = self.size = self.dev = 0
        self.atime = self.ctime = self.mtime = self.crtime = 0
        self.links = 0
        self.data_start = self.data_blocks = self.leaf_block = self.xattr_block = 0
        self.inline_xattrs: Sequence[_Xattr] = ()      # shared empty tuple: most inodes have none
        self.block_xattrs: Sequence[_Xattr] = ()
        self.children: Optional[dict[bytes, _Inode]] = {} if mode & _TYPE_MASK == S_IFDIR else None
        self.target = b""

    @property
    def is_dir(self) -> bool:
        return self.children is not None

    def copy_meta(self) -> dict:
        """The metadata Stat returns (times after the decode/encode round trip)."""
        return dict(mode=self.mode, uid=self.uid, gid=self.gid, dev=self.dev,
                    atime=_roundtrip_time(self.atime), ctime=_roundtrip_time(self.ctime),
                    mtime=_roundtrip_time(self.mtime), crtime=_roundtrip_time(self.crtime))


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def _components(name: bytes) -> list[bytes]:
    """``path.Clean("/" + name)`` split into components (lexical; ``..`` stops at root)."""
    parts = name.split(b"/")
    if b"" not in parts and b"." not in parts and b".." not in parts:
        return parts                                  # already clean (nearly every name)
    out: list[bytes] = []
    for part in parts:
        if part in (b"", b"."):
            continue
        if part == b"..":
            if out:
                out.pop()
        else:
            out.append(part)
    return out


_HINTS = {
    "invalid name": "ext4 allows 1 to 255 bytes per path component.",
    "path not found": "A parent of this path is not a directory in the layer (the host never "
                      "follows symlinks while building the layer).",
    "cannot replace a directory with a file": "The layer lists this path both as a directory "
                                              "and as something else.",
    "cannot replace a file with a directory": "The layer lists this path both as a directory "
                                              "and as something else.",
    "cannot orphan existing file or directory": "A hard link may only replace a file that has "
                                                "other names.",
    "exceeded parent directory maximum link count": "ext4 allows at most 64998 subdirectories "
                                                    "per directory.",
}


def _fail(name: bytes, what: str, hint: str | None = None) -> LayerConversionError:
    """The reference's ``NAME: problem`` error, with a hint saying what it means."""
    return LayerConversionError(f"{_show(name)}: {what}", hint=hint or _HINTS.get(what))


class Ext4Builder:
    """Builds the compactext4 image of one layer, feeding every block to a verity hasher.

    With ``out`` the image bytes are also written to that (seekable) file, for ``create``.
    """

    def __init__(self, hasher: VerityHasher, out: BinaryIO | None = None) -> None:
        self._hasher = hasher
        self._out = out
        self._pos = 0
        self._buf = bytearray(_COPY_CHUNK)
        view = memoryview(self._buf)
        self._buf_blocks = [view[i:i + BLOCK_SIZE] for i in range(0, _COPY_CHUNK, BLOCK_SIZE)]
        self._inodes: list[Optional[_Inode]] = [None] * _FIRST_INO
        self._emit_zero_blocks(_FIRST_DATA_BLOCK)        # superblock + GDT, patched in finish()
        root = self._new_inode(S_IFDIR | 0o755, number=_ROOT_INO)
        root.links = 2
        self._root = root
        lost = self._new_inode(S_IFDIR | 0o700, number=_LOST_FOUND_INO)
        lost.links = 2
        root.children[b"lost+found"] = lost
        root.links += 1

    # -- block output ------------------------------------------------------------------

    def _emit(self, blocks: memoryview | bytes | bytearray,
              views: list[memoryview] | None = None) -> None:
        """Append whole blocks; ``views``: the same blocks as 4 KiB views, when at hand."""
        count = len(blocks) // BLOCK_SIZE
        if self._pos + count > _MAX_BLOCKS:
            raise LayerConversionError(f"disk exceeded maximum size of {MAX_DISK_SIZE} bytes",
                                       hint="The ACI host cannot mount layers above 128 GiB.")
        if views is None:
            self._hasher.add_blocks(blocks)
        else:
            self._hasher.add_block_views(views)
        if self._out is not None:
            self._out.write(blocks)
        self._pos += count

    def _emit_zero_blocks(self, count: int) -> None:
        self._hasher.add_zero_blocks(count)
        if self._out is not None:
            self._out.seek(count * BLOCK_SIZE, os.SEEK_CUR)
            self._out.truncate()
        self._pos += count

    def _rewrite(self, index: int, block: bytes | bytearray) -> None:
        self._hasher.set_block(index, block)
        if self._out is not None:
            here = self._out.tell()
            self._out.seek(index * BLOCK_SIZE)
            self._out.write(block)
            self._out.seek(here)

    # -- inodes --------------------------------------------------------------------------

    def _new_inode(self, mode: int, number: int | None = None) -> _Inode:
        if number is None:                    # the next free number (nearly every inode)
            node = _Inode(len(self._inodes), mode)
            self._inodes.append(node)
            return node
        node = _Inode(number, mode)
        while len(self._inodes) <= number:
            self._inodes.append(None)
        self._inodes[number] = node
        return node

    def _lookup(self, parts: list[bytes], name: bytes) -> _Inode:
        """The directory holding ``parts[-1]`` (which must exist as a directory chain)."""
        node = self._root
        for part in parts[:-1]:
            if len(part) > 255:
                raise _fail(name, "invalid name")
            child = node.children.get(part)
            if child is None or not child.is_dir:
                raise _fail(name, "path not found")
            node = child
        if parts and len(parts[-1]) > 255:
            raise _fail(name, "invalid name")
        return node

    def _find(self, name: bytes) -> Optional[_Inode]:
        parts = _components(name)
        if not parts:
            return self._root
        return self._lookup(parts, name).children.get(parts[-1])

    def _mkdir_parents(self, parts: list[bytes]) -> _Inode:
        """Create missing parent directories; the innermost one (the entry's parent)."""
        node = self._root
        for i, part in enumerate(parts):
            child = node.children.get(part)
            if child is not None and child.children is not None:   # an existing directory
                node = child
                continue
            if len(part) > 255:
                raise _fail(b"/".join(parts[:i + 1]), "invalid name")
            if child is None:
                if node.links >= MAX_LINKS:
                    raise _fail(b"/".join(parts[:i + 1]),
                                "exceeded parent directory maximum link count")
                meta = node.copy_meta()
                child = self._new_inode(meta.pop("mode"))
                for key, value in meta.items():
                    setattr(child, key, value)
                child.links = 2
                node.children[part] = child
                node.links += 1
            elif not child.is_dir:
                raise _fail(b"/".join(parts[:i + 1]), "path not found")
            node = child
        return node

    def _parent(self, parts: list[bytes], name: bytes, parent: _Inode | None) -> _Inode:
        """``parent`` when the caller already walked to it (only the leaf left to check)."""
        if parent is None:
            return self._lookup(parts, name)
        if len(parts[-1]) > 255:
            raise _fail(name, "invalid name")
        return parent

    def _create(self, name: bytes, parts: list[bytes], meta: dict, xattrs: dict[bytes, bytes],
                parent: _Inode | None = None) -> _Inode:
        """compactext4 Create: new inode, or reuse of the existing one under that name.

        ``parent``: the directory of ``parts[-1]``, if the caller already has it.
        """
        mode = meta["mode"]
        is_dir = mode & _TYPE_MASK == S_IFDIR
        if not parts:
            parent, existing, leaf = None, self._root, b""
        else:
            parent = self._parent(parts, name, parent)
            leaf = parts[-1]
            existing = parent.children.get(leaf)
        reuse = None
        if existing is not None:
            if existing.is_dir:
                if not is_dir:
                    raise _fail(name, "cannot replace a directory with a file")
                reuse = existing
            elif is_dir:
                raise _fail(name, "cannot replace a file with a directory")
            elif existing.links < 2:
                reuse = existing
        elif is_dir and parent.links >= MAX_LINKS:
            raise _fail(name, "exceeded parent directory maximum link count")

        if reuse is not None:
            if reuse.data_blocks:
                raise _fail(name, "cannot overwrite file with non-inline data",
                            hint="A layer may only repeat a path whose first copy was empty.")
            merged = dict(xattrs)
            for key, value in _readback(reuse.inline_xattrs).items():
                merged.setdefault(key, value)
            xattrs = merged
            node = reuse
            node.mode = mode
        else:
            node = self._new_inode(mode)
        inline, block = _place_xattrs(xattrs, name) if xattrs else ((), ())
        node.uid, node.gid, node.dev = meta["uid"], meta["gid"], meta["dev"]
        node.atime, node.ctime, node.mtime, node.crtime = (
            meta["atime"], meta["ctime"], meta["mtime"], meta["crtime"])
        node.size = 0
        node.target = b""
        node.inline_xattrs = inline or ()
        node.block_xattrs = block or ()
        if block or node.xattr_block:
            content = self._xattr_block(block)
            if node.xattr_block:
                self._rewrite(node.xattr_block, content)
            else:
                node.xattr_block = self._pos
                self._emit(content)

        if node is not existing:
            if existing is not None:
                existing.links -= 1
            parent.children[leaf] = node
            if is_dir:
                node.links = 2
                parent.links += 1
            else:
                node.links += 1
        return node

    @staticmethod
    def _xattr_block(entries: list[_Xattr]) -> bytearray:
        block = bytearray(BLOCK_SIZE)
        struct.pack_into("<III", block, 0, _XATTR_MAGIC, 1, 1)
        _pack_xattrs(entries, block, 32, 0)
        return block

    # -- entries -------------------------------------------------------------------------

    def add(self, entry: TarEntry) -> None:
        """Apply one tar entry, in archive order."""
        name = entry.name
        parts = _components(name)
        try:
            parent = self._mkdir_parents(parts[:-1])
        except LayerConversionError as err:
            raise LayerConversionError(
                f"failed to ensure parent directories for {_show(name)}: {err.message}",
                hint=err.hint) from None
        base = name[name.rfind(b"/") + 1:]
        if base.startswith(b".wh."):
            self._whiteout(name, base, parts)
        elif entry.typeflag == b"1":
            self._link(entry, name, parts, parent)
        else:
            self._add_file(entry, name, parts, parent if parts else None)

    def _whiteout(self, name: bytes, base: bytes, parts: list[bytes]) -> None:
        dir_parts = parts[:-1]
        if base == b".wh..wh..opq":
            try:
                directory = self._find(b"/".join(dir_parts)) if dir_parts else self._root
                if directory is None:
                    raise _fail(b"/".join(dir_parts), "file not found")
            except LayerConversionError as err:
                raise LayerConversionError(
                    f"failed to stat parent directory of whiteout {_show(name)}: {err.message}"
                ) from None
            xattrs = _readback(directory.block_xattrs)
            xattrs.update((k, v) for k, v in _readback(directory.inline_xattrs).items()
                          if k != b"system.data")
            xattrs[b"trusted.overlay.opaque"] = b"y"
            self._create(b"/".join(dir_parts), dir_parts, directory.copy_meta(), xattrs)
            return
        meta = dict(mode=S_IFCHR, uid=0, gid=0, dev=0, atime=0, ctime=0, mtime=0, crtime=0)
        target = _components(name[:len(name) - len(base)] + base[4:])
        try:
            self._create(b"/".join(target), target, meta, {})
        except LayerConversionError as err:
            raise LayerConversionError(
                f"failed to create whiteout file for {_show(base)}: {err.message}",
                hint=err.hint) from None

    def _link(self, entry: TarEntry, name: bytes, parts: list[bytes], parent: _Inode) -> None:
        if not parts:
            raise _fail(name, "cannot orphan existing file or directory")
        parent = self._parent(parts, name, parent)
        existing = parent.children.get(parts[-1])
        if existing is not None and (existing.is_dir or existing.links < 2):
            raise _fail(name, "cannot orphan existing file or directory")
        target = self._find(entry.linkname)
        if target is None:
            raise _fail(entry.linkname, "file not found",
                        hint="A hard link must point at a file that appears earlier in the layer.")
        if target.is_dir:
            raise _fail(name, f"link target cannot be a directory: {_show(entry.linkname)}")
        if existing is not target and target.links >= MAX_LINKS:
            raise _fail(name, f"link target would exceed maximum link count: "
                              f"{_show(entry.linkname)}")
        if existing is not None:
            existing.links -= 1
        target.links += 1
        parent.children[parts[-1]] = target

    def _add_file(self, entry: TarEntry, name: bytes, parts: list[bytes],
                  parent: _Inode | None) -> None:
        typeflag = entry.typeflag
        if typeflag == b"\0" and name.endswith(b"/"):
            typeflag = b"5"
        ftype = _TAR_TYPES.get(typeflag, S_IFREG)
        mode = (entry.mode & 0o7777) | ftype
        if ftype == S_IFLNK:
            mode |= 0o777
        size = entry.size if ftype == S_IFREG and typeflag != b"g" else 0
        if size > MAX_FILE_SIZE:
            raise LayerConversionError(f"file too big: {_show(name)} is {size} bytes",
                                       hint="The ACI host cannot store files above 128 GiB.")
        mtime = encode_time(entry.mtime)
        meta = dict(mode=mode, uid=entry.uid & 0xFFFFFFFF, gid=entry.gid & 0xFFFFFFFF,
                    atime=encode_time(entry.atime), ctime=encode_time(entry.ctime),
                    mtime=mtime, crtime=mtime, dev=0)
        if ftype in (S_IFCHR, S_IFBLK):
            major, minor = entry.devmajor & 0xFFFFFFFF, entry.devminor & 0xFFFFFFFF
            meta["dev"] = ((minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)) & 0xFFFFFFFF
        node = self._create(name, parts, meta, entry.xattrs, parent)
        if ftype == S_IFLNK:
            node.size = len(entry.linkname)
            if node.size < 60:
                node.target = entry.linkname
            else:
                self._write_bytes(node, entry.linkname)
        elif ftype == S_IFREG and size:
            node.size = size
            self._write_stream(node, entry, name)

    # -- data ------------------------------------------------------------------------------

    def _write_stream(self, node: _Inode, entry: TarEntry, name: bytes) -> None:
        reader = entry.data
        if reader is None:
            raise ArchiveError(f"{_show(name)}: entry has {node.size} bytes of data but no reader")
        start = self._pos
        view = memoryview(self._buf)
        remaining = node.size
        while remaining:
            want = min(len(view), remaining)
            got = 0
            while got < want:
                n = reader.readinto(view[got:want])
                if not n:
                    raise ArchiveError(f"{_show(name)}: unexpected end of file in entry data",
                                       hint="The layer tar is truncated.")
                got += n
            remaining -= got
            pad = -got % BLOCK_SIZE
            if pad:
                view[got:got + pad] = _ZEROS[:pad]
            self._emit(view[:got + pad], self._buf_blocks[:(got + pad) // BLOCK_SIZE])
        self._finish_data(node, start)

    def _write_bytes(self, node: _Inode, data: bytes) -> None:
        start = self._pos
        self._emit(data + bytes(-len(data) % BLOCK_SIZE))
        self._finish_data(node, start)

    def _finish_data(self, node: _Inode, start: int) -> None:
        node.data_start = start
        node.data_blocks = self._pos - start
        count = -(-node.data_blocks // _EXTENT_MAX_LEN)
        if count > 4:
            if count > _LEAF_MAX_ENTRIES - 1:
                raise LayerConversionError(
                    "file too big: files of more than 339 extents (about 42 GiB) are "
                    "laid out differently by the reference converter and are not supported")
            node.leaf_block = self._pos
            leaf = bytearray(BLOCK_SIZE)
            struct.pack_into("<HHHHI", leaf, 0, _EXTENT_MAGIC, count, _LEAF_MAX_ENTRIES, 0, 0)
            for i, ext in enumerate(self._extents(node)):
                struct.pack_into("<IHHI", leaf, 12 + 12 * i, *ext)
            self._emit(leaf)

    @staticmethod
    def _extents(node: _Inode) -> list[tuple[int, int, int, int]]:
        return [(logical, min(_EXTENT_MAX_LEN, node.data_blocks - logical), 0,
                 node.data_start + logical)
                for logical in range(0, node.data_blocks, _EXTENT_MAX_LEN)]

    # -- finishing -------------------------------------------------------------------------

    def finish(self) -> int:
        """Write directories, inode table, bitmaps and superblock; return the image size."""
        self._write_directories()
        inode_count = len(self._inodes) - 1
        data_end = self._pos
        groups, ipg = _group_layout(data_end, inode_count)
        table_blocks = groups * ipg // _INODES_PER_BLOCK
        self._write_inode_table(groups * ipg)
        bitmaps_at = data_end + table_blocks
        valid = bitmaps_at + 2 * groups
        disk_blocks = max(valid, (groups - 1) * _BLOCKS_PER_GROUP + 1)
        if disk_blocks > _MAX_BLOCKS:
            raise LayerConversionError(f"disk exceeded maximum size of {MAX_DISK_SIZE} bytes")
        gdt_used = 1 + -(-groups // 128)
        descriptors = bytearray(_GDT_BLOCKS * BLOCK_SIZE)
        free_blocks_total = free_inodes_total = 0
        dirs_per_group = [0] * groups
        for node in self._inodes:
            if node is not None and node.is_dir:
                dirs_per_group[(node.number - 1) // ipg] += 1
        for g in range(groups):
            first = g * _BLOCKS_PER_GROUP
            block_bitmap = _prefix_bits(min(max(valid - first, 0), _BLOCKS_PER_GROUP))
            if g == 0:
                for b in range(gdt_used, _FIRST_DATA_BLOCK):
                    block_bitmap[b // 8] &= ~(1 << (b % 8))
            if g == groups - 1:
                for b in range(disk_blocks - first, _BLOCKS_PER_GROUP):
                    block_bitmap[b // 8] |= 1 << (b % 8)
            used_inodes = min(max(inode_count - g * ipg, 0), ipg)
            inode_bitmap = _prefix_bits(used_inodes)
            self._emit(block_bitmap)
            self._emit(inode_bitmap)
            free_blocks = _BLOCKS_PER_GROUP - _count_bits(block_bitmap)
            free_inodes = ipg - used_inodes
            free_blocks_total += free_blocks
            free_inodes_total += free_inodes
            _GROUP_DESC.pack_into(descriptors, 32 * g, bitmaps_at + 2 * g, bitmaps_at + 2 * g + 1,
                                  data_end + g * ipg // _INODES_PER_BLOCK, free_blocks,
                                  free_inodes, dirs_per_group[g], 0, 0, 0, 0, 0, 0)
        self._emit_zero_blocks(disk_blocks - valid)
        self._rewrite(0, _superblock(groups, ipg, disk_blocks, free_blocks_total,
                                     free_inodes_total))
        for i in range(_GDT_BLOCKS):
            self._rewrite(1 + i, descriptors[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE])
        return disk_blocks * BLOCK_SIZE

    def _write_directories(self) -> None:
        stack = [(self._root, self._root)]
        while stack:
            node, parent = stack.pop()
            start = self._pos
            self._emit(_directory_blocks(node, parent))
            self._finish_data(node, start)
            node.size = node.data_blocks * BLOCK_SIZE
            subdirs = sorted((c for c in set(node.children.values()) if c.is_dir),
                             key=lambda c: c.number)
            stack.extend((c, node) for c in reversed(subdirs))

    def _write_inode_table(self, slots: int) -> None:
        batch = bytearray()
        empty = bytes(_INODE_SIZE)
        for number in range(1, slots + 1):
            node = self._inodes[number] if number < len(self._inodes) else None
            batch += empty if node is None else self._inode_record(node)
            if len(batch) >= _COPY_CHUNK:
                self._emit(batch)
                batch = bytearray()
        if batch:
            self._emit(batch)

    def _inode_record(self, node: _Inode) -> bytes:
        i_block = b""
        flags = _FLAG_HUGE_FILE
        blocks = node.data_blocks + (1 if node.leaf_block else 0) + (1 if node.xattr_block else 0)
        ftype = node.mode & _TYPE_MASK
        if node.data_blocks:
            flags |= _FLAG_EXTENTS
            if node.leaf_block:
                i_block = struct.pack("<HHHHIIIHH", _EXTENT_MAGIC, 1, 4, 1, 0, 0,
                                      node.leaf_block, 0, 0)
            elif node.data_blocks <= _EXTENT_MAX_LEN:     # most files: one extent
                i_block = _ONE_EXTENT.pack(_EXTENT_MAGIC, 1, 4, 0, 0, 0, node.data_blocks, 0,
                                           node.data_start)
            else:
                extents = self._extents(node)
                i_block = struct.pack("<HHHHI", _EXTENT_MAGIC, len(extents), 4, 0, 0) + b"".join(
                    struct.pack("<IHHI", *e) for e in extents)
        elif ftype == S_IFLNK:
            i_block = node.target
        elif ftype in (S_IFCHR, S_IFBLK):
            i_block = struct.pack("<II", 0, node.dev)
        area = _NO_INLINE_XATTRS
        if node.inline_xattrs:
            area = bytearray(len(_NO_INLINE_XATTRS))
            struct.pack_into("<I", area, 0, _XATTR_MAGIC)
            _pack_xattrs(node.inline_xattrs, area, 4, 4)
        return _INODE.pack(
            node.mode, node.uid & 0xFFFF, node.size & 0xFFFFFFFF,
            node.atime & 0xFFFFFFFF, node.ctime & 0xFFFFFFFF, node.mtime & 0xFFFFFFFF, 0,
            node.gid & 0xFFFF, node.links, blocks, flags, 0, i_block, 0, node.xattr_block,
            node.size >> 32, 0, 0, 0, node.uid >> 16, node.gid >> 16, 0, 0, 24, 0,
            node.ctime >> 32, node.mtime >> 32, node.atime >> 32, node.crtime & 0xFFFFFFFF,
            node.crtime >> 32, area)


def _directory_blocks(node: _Inode, parent: _Inode) -> bytearray:
    entries = [(node.number, b".", S_IFDIR), (parent.number, b"..", S_IFDIR)]
    # by (number, name): names are unique, so the type never takes part in the comparison
    entries += sorted((child.number, name, child.mode & _TYPE_MASK)
                      for name, child in node.children.items())
    out = bytearray()
    used = 0
    pack = _DIRENT.pack
    for number, name, ftype in entries:            # one pass per file of the layer: locals only
        size = len(name)
        rec_len = (size + 11) & ~3                  # 8-byte header + name, to 4 bytes
        if BLOCK_SIZE - used < rec_len + 12:
            out += _filler(BLOCK_SIZE - used)
            used = 0
        out += pack(number, rec_len, size, _DIRENT_TYPE[ftype])
        out += name
        out += _NAME_PAD[rec_len - 8 - size]
        used += rec_len
    out += _filler(BLOCK_SIZE - used)
    return out


def _filler(space: int) -> bytes:
    return _DIRENT.pack(0, space, 0, 0) + bytes(space - 8)


def _group_layout(blocks: int, inodes: int) -> tuple[int, int]:
    """(groups, inodes per group): fewest groups, ties to the smaller inodes-per-group."""
    best = None
    ipg = 16
    while ipg <= 32768:
        per_group = _BLOCKS_PER_GROUP - ipg // _INODES_PER_BLOCK - 2
        minimum = (inodes - 1) // ipg * per_group + 1
        groups = -(-max(blocks, minimum) // per_group)
        if best is None or groups < best[0]:
            best = (groups, ipg)
        ipg += 16
    return best


def _prefix_bits(count: int) -> bytearray:
    """A 4 KiB bitmap with the first ``count`` bits set."""
    bitmap = bytearray(BLOCK_SIZE)
    full, rest = divmod(count, 8)
    bitmap[:full] = b"\xff" * full
    if rest:
        bitmap[full] = (1 << rest) - 1
    return bitmap


def _count_bits(bitmap: bytearray) -> int:
    return bin(int.from_bytes(bitmap, "little")).count("1")


def _superblock(groups: int, ipg: int, disk_blocks: int, free_blocks: int,
                free_inodes: int) -> bytearray:
    block = bytearray(BLOCK_SIZE)
    sb = 1024
    struct.pack_into("<IIIIIIIIIII", block, sb, ipg * groups, disk_blocks, 0, free_blocks,
                     free_inodes, 0, 2, 2, _BLOCKS_PER_GROUP, _BLOCKS_PER_GROUP, ipg)
    struct.pack_into("<HHHH", block, sb + 0x38, 0xEF53, 1, 1, 0)
    struct.pack_into("<II", block, sb + 0x48, 0, 1)
    struct.pack_into("<IHHIII", block, sb + 0x54, 11, _INODE_SIZE, 0, 0x208, 0x242, 0x104A)
    struct.pack_into("<HH", block, sb + 0x15C, 24, 24)
    struct.pack_into("<B", block, sb + 0x174, 31)
    struct.pack_into("<I", block, sb + 0x268, _LOST_FOUND_INO)
    return block


def build(entries: Iterable[TarEntry], hasher: VerityHasher, out: BinaryIO | None = None) -> int:
    """Convert a layer's entries; every image block goes through ``hasher``. Returns the size."""
    builder = Ext4Builder(hasher, out)
    for entry in entries:
        builder.add(entry)
    return builder.finish()
