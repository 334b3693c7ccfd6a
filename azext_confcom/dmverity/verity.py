"""dm-verity merkle tree over a stream of 4 KiB blocks (sha256, zero salt prepended).

The ext4 image is produced mostly in order, but a few blocks (superblock, group
descriptors, rewritten xattr blocks) are only final at the end. The hasher therefore
keeps one 32-byte leaf digest per block, lets callers overwrite any leaf, and builds the
upper levels only when the root is asked for. Nothing but the leaves is ever stored.
"""

from __future__ import annotations

import hashlib
from typing import Iterator

BLOCK_SIZE = 4096
DIGEST_SIZE = 32
SALT = bytes(32)
#: digests per hash block
FANOUT = BLOCK_SIZE // DIGEST_SIZE

_SALTED = hashlib.sha256(SALT)
ZERO_BLOCK = bytes(BLOCK_SIZE)


def block_digest(block: bytes | memoryview) -> bytes:
    """sha256(salt || block) for one full 4 KiB block."""
    h = _SALTED.copy()
    h.update(block)
    return h.digest()


ZERO_BLOCK_DIGEST = block_digest(ZERO_BLOCK)


class VerityHasher:
    """Collects leaf digests of data blocks in order and computes the dm-verity root."""

    def __init__(self) -> None:
        self._leaves = bytearray()

    @property
    def block_count(self) -> int:
        return len(self._leaves) // DIGEST_SIZE

    def add_blocks(self, data: bytes | bytearray | memoryview) -> None:
        """Hash consecutive whole blocks (``len(data)`` must be a multiple of 4096)."""
        view = memoryview(data)
        size = len(view)
        if size % BLOCK_SIZE:
            raise ValueError("data is not a whole number of blocks")
        copy = _SALTED.copy
        out = self._leaves
        for offset in range(0, size, BLOCK_SIZE):
            h = copy()
            h.update(view[offset:offset + BLOCK_SIZE])
            out += h.digest()

    def add_zero_blocks(self, count: int) -> None:
        """Append ``count`` all-zero blocks without hashing them one by one."""
        self._leaves += ZERO_BLOCK_DIGEST * count

    def set_block(self, index: int, block: bytes | memoryview) -> None:
        """Replace the digest of an already counted block whose content changed."""
        if not 0 <= index < self.block_count:
            raise IndexError(f"block {index} has not been added yet")
        start = index * DIGEST_SIZE
        self._leaves[start:start + DIGEST_SIZE] = block_digest(block)

    def levels(self) -> list[bytes]:
        """Every hash level, leaves first, each padded to whole blocks."""
        level = _pad(bytes(self._leaves))
        levels = [level]
        while len(level) > BLOCK_SIZE:
            level = _pad(b"".join(block_digest(b) for b in _blocks(level)))
            levels.append(level)
        return levels

    def root(self) -> bytes:
        """The root digest: hash of the first level that fits one block."""
        return block_digest(self.levels()[-1])

    def root_hex(self) -> str:
        return self.root().hex()


def _pad(level: bytes) -> bytes:
    rest = -len(level) % BLOCK_SIZE
    if rest or not level:
        level += bytes(rest or BLOCK_SIZE)
    return level


def _blocks(data: bytes) -> Iterator[memoryview]:
    view = memoryview(data)
    for offset in range(0, len(view), BLOCK_SIZE):
        yield view[offset:offset + BLOCK_SIZE]
