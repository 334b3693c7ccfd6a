"""Layer VHD for ``create``: ext4 || dm-verity superblock || hash tree || fixed VHD footer.

This is the file the ACI host mounts; its dm-verity part is the standard veritysetup
layout (superblock in the first hash block, then the tree top level first) so that
``veritysetup verify IMG IMG ROOT --hash-offset=<ext4 size>`` checks it.
"""

from __future__ import annotations

import os
import struct
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from .layer import build_layer
from .verity import BLOCK_SIZE, SALT

_VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z


def verity_superblock(data_blocks: int, volume_uuid: bytes) -> bytes:
    """veritysetup on-disk superblock (version 1, normal hash type), padded to one block."""
    head = struct.pack("<8sII16s32sIIQH6x", b"verity", 1, 1, volume_uuid, b"sha256",
                       BLOCK_SIZE, BLOCK_SIZE, data_blocks, len(SALT))
    return (head + SALT).ljust(BLOCK_SIZE, b"\0")


def _geometry(size: int) -> int:
    """CHS geometry from the VHD specification, packed as cylinders(16) heads(8) sectors(8)."""
    sectors = min(size // 512, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        per_track, heads = 255, 16
        cyl_heads = sectors // per_track
    else:
        per_track = 17
        cyl_heads = sectors // per_track
        heads = max((cyl_heads + 1023) // 1024, 4)
        if cyl_heads >= heads * 1024 or heads > 16:
            per_track, heads = 31, 16
            cyl_heads = sectors // per_track
        if cyl_heads >= heads * 1024:
            per_track, heads = 63, 16
            cyl_heads = sectors // per_track
    return ((cyl_heads // heads) << 16) | (heads << 8) | per_track


def vhd_footer(size: int, unique_id: bytes, timestamp: int | None = None) -> bytes:
    """512-byte fixed-disk VHD footer for a disk of ``size`` bytes."""
    stamp = int(time.time() if timestamp is None else timestamp) - _VHD_EPOCH
    fields = [b"conectix", 2, 0x00010000, 0xFFFFFFFFFFFFFFFF, max(stamp, 0) & 0xFFFFFFFF,
              b"cnfc", 0x00010000, 0x5769326B, size, size, _geometry(size), 2]
    body = struct.pack(">8sIIQI4sIIQQIII16sB", *fields, 0, unique_id, 0).ljust(512, b"\0")
    checksum = ~sum(body) & 0xFFFFFFFF
    return body[:64] + struct.pack(">I", checksum) + body[68:]


def write_layer_vhd(stream: BinaryIO, directory: Path, name: str) -> tuple[Path, str]:
    """Convert one layer tar into ``directory/name``; return the path and the root hash.

    The VHD is built under a temporary name and renamed when complete.
    """
    tmp = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)   # umask applies, as for any file
    try:
        with os.fdopen(fd, "w+b") as out:
            hasher, ext4_size = build_layer(stream, out)
            out.seek(ext4_size)
            out.truncate()
            out.write(verity_superblock(ext4_size // BLOCK_SIZE, uuid.uuid4().bytes))
            hasher.write_tree(out)
            out.write(vhd_footer(out.tell(), uuid.uuid4().bytes))
        path = directory / name
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path, hasher.root_hex()
