"""dm-verity merkle tree over a stream of 4 KiB blocks (sha256, zero salt prepended).

The ext4 image is produced mostly in order, but a few blocks (superblock, group
descriptors, rewritten xattr blocks) are only final at the end. The hasher therefore
keeps one 32-byte leaf digest per block, lets callers overwrite any leaf, and builds the
upper levels only when the root is asked for. Nothing but the leaves is ever stored.

Hashing a 4 KiB block costs as much as everything else the converter does per block, so
for large layers it is moved to a bare helper interpreter fed through a pipe: the main
process parses the tar and lays out ext4 while the helper hashes on another core.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import threading
from typing import Iterator

from ..errors import HashingError

try:
    import fcntl
except ImportError:      # not on Windows: the helper then uses default pipe sizes
    fcntl = None  # type: ignore[assignment]

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
    """Collects leaf digests of data blocks in order and computes the dm-verity root.

    Once a layer proves large (``OFFLOAD_AFTER`` blocks), further blocks are hashed by a
    helper process fed through a pipe, so hashing runs on a second core while this one
    parses the tar; small layers never pay for the helper. ``close()`` releases it.
    """

    #: blocks hashed in-process before a helper process takes over (16 MiB)
    OFFLOAD_AFTER = 4096

    def __init__(self, *, offload: bool = True) -> None:
        self._leaves = bytearray()
        self._count = 0
        self._patches: dict[int, bytes] = {}
        self._helper: _HashHelper | None = None
        self._levels: list[bytes | bytearray] | None = None
        self._offload = offload and (os.cpu_count() or 1) > 1 and not getattr(sys, "frozen", False)

    @property
    def block_count(self) -> int:
        return self._count

    def add_blocks(self, data: bytes | bytearray | memoryview) -> None:
        """Hash consecutive whole blocks (``len(data)`` must be a multiple of 4096).

        The caller may reuse ``data`` as soon as this returns.
        """
        view = memoryview(data)
        size = len(view)
        if size % BLOCK_SIZE:
            raise ValueError("data is not a whole number of blocks")
        self._count += size // BLOCK_SIZE
        if self._helper is None and self._offload and self._count > self.OFFLOAD_AFTER:
            # from here on every block goes to the helper, whose digests follow ours
            self._helper = _HashHelper.start(self._leaves)
            self._offload = self._helper is not None
        if self._helper is not None:
            self._helper.send(view)
        else:
            self._leaves += _digests(view)

    def add_zero_blocks(self, count: int) -> None:
        """Append ``count`` all-zero blocks without hashing them one by one."""
        self._count += count
        if self._helper is not None:
            self._helper.send_zero(count)
        else:
            self._leaves += ZERO_BLOCK_DIGEST * count

    def set_block(self, index: int, block: bytes | memoryview) -> None:
        """Replace the digest of an already counted block whose content changed."""
        if not 0 <= index < self._count:
            raise IndexError(f"block {index} has not been added yet")
        self._patches[index] = block_digest(block)

    def _finish(self) -> None:
        if self._levels is not None:
            return
        if self._helper is not None:
            self._helper.finish()
            self._helper = None
            self._offload = False
        if len(self._leaves) != self._count * DIGEST_SIZE:
            raise HashingError("the block hashing helper process lost blocks",
                               hint="Run again; if it persists, report it.")
        for index, digest in self._patches.items():
            start = index * DIGEST_SIZE
            self._leaves[start:start + DIGEST_SIZE] = digest
        self._patches.clear()
        levels = [_pad(self._leaves)]                 # in place: the leaves are not copied
        while len(levels[-1]) > BLOCK_SIZE:
            levels.append(_pad(b"".join(block_digest(b) for b in _blocks(levels[-1]))))
        self._levels = levels

    def close(self) -> None:
        """Stop a helper process, if any (after an error; ``levels()`` finishes normally)."""
        if self._helper is not None:
            self._helper.kill()
            self._helper = None

    def levels(self) -> list[bytes | bytearray]:
        """Every hash level, leaves first, each padded to whole blocks (no more blocks after)."""
        self._finish()
        return self._levels

    def root(self) -> bytes:
        """The root digest: hash of the first level that fits one block."""
        return block_digest(self.levels()[-1])

    def root_hex(self) -> str:
        return self.root().hex()


def _digests(view: memoryview) -> bytearray:
    """Leaf digests of consecutive whole blocks."""
    copy = _SALTED.copy
    out = bytearray()
    for offset in range(0, len(view), BLOCK_SIZE):
        h = copy()
        h.update(view[offset:offset + BLOCK_SIZE])
        out += h.digest()
    return out


# The helper: a bare interpreter (no site, no imports beyond hashlib) reading messages
# "<u32 n><n blocks>" (n < 2**31) or "<u32 2**31 + n>" (n zero blocks) and writing the
# n leaf digests back; n == 0 ends it.
_HELPER_SOURCE = r"""
import hashlib, sys
read, write = sys.stdin.buffer.raw.readinto, sys.stdout.buffer.raw.write
copy = hashlib.sha256(bytes(32)).copy
zero = hashlib.sha256(bytes(32) + bytes(4096)).digest()
buf = memoryview(bytearray(1 << 20))
def fill(view):
    got = 0
    while got < len(view):
        n = read(view[got:])
        if not n:
            sys.exit(1)
        got += n
def send(out):
    out, done = memoryview(out), 0
    while done < len(out):
        done += write(out[done:])
head = memoryview(bytearray(4))
while True:
    fill(head)
    n = int.from_bytes(head, "little")
    if n == 0:
        break
    if n >= 1 << 31:
        n -= 1 << 31
        while n:
            step = min(n, 32768)
            send(zero * step)
            n -= step
        continue
    view = buf[:n * 4096]
    fill(view)
    out = bytearray()
    for off in range(0, len(view), 4096):
        h = copy()
        h.update(view[off:off + 4096])
        out += h.digest()
    send(out)
"""
_HELPER_CHUNK = 256


class _HashHelper:
    """A child process hashing blocks; a thread collects its digests so the pipe never fills."""

    def __init__(self, proc: subprocess.Popen, digests: bytearray) -> None:
        self._proc = proc
        self._digests = digests
        self._stage = memoryview(bytearray(_HELPER_CHUNK * BLOCK_SIZE))
        self._staged = 0
        self._reader = threading.Thread(target=self._collect, name="verity-digests", daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, digests: bytearray) -> "_HashHelper | None":
        """Start a helper whose digests are appended to ``digests``; None if impossible."""
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _HELPER_SOURCE],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        except OSError:
            return None                      # no second process: hash in-process
        for pipe in (proc.stdin, proc.stdout):   # fewer wake-ups and stalls (Linux only)
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _HELPER_CHUNK * BLOCK_SIZE)
        return cls(proc, digests)

    def _collect(self) -> None:
        read = self._proc.stdout.read
        while chunk := read(_HELPER_CHUNK * BLOCK_SIZE):
            self._digests += chunk

    def _write(self, data: bytes | memoryview) -> None:
        try:
            self._proc.stdin.write(data)
        except OSError as err:
            raise HashingError(f"the block hashing helper process failed: {err}") from None

    def send(self, view: memoryview) -> None:
        """Queue blocks; they travel in messages of up to 1 MiB (one helper wake-up each).

        Small runs (a small file's blocks) are gathered first; a full chunk goes as is.
        """
        stage, size = self._stage, len(self._stage)
        if len(view) == size:
            self._flush()
            self._write(_HELPER_CHUNK.to_bytes(4, "little"))
            self._write(view)
            return
        offset = 0
        while offset < len(view):
            take = min(size - self._staged, len(view) - offset)
            stage[self._staged:self._staged + take] = view[offset:offset + take]
            self._staged += take
            offset += take
            if self._staged == size:
                self._flush()

    def _flush(self) -> None:
        if self._staged:
            self._write((self._staged // BLOCK_SIZE).to_bytes(4, "little"))
            self._write(self._stage[:self._staged])
            self._staged = 0

    def send_zero(self, count: int) -> None:
        self._flush()
        while count:
            step = min(count, (1 << 31) - 1)
            self._write(((1 << 31) + step).to_bytes(4, "little"))
            count -= step

    def finish(self) -> None:
        self._flush()
        self._write(bytes(4))
        self._proc.stdin.close()
        self._reader.join()
        if self._proc.wait() != 0:
            raise HashingError("the block hashing helper process failed",
                               hint="Run again; if it persists, report it.")

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._reader.join()


def _pad(level: bytes | bytearray) -> bytes | bytearray:
    """Zero-pad to whole blocks (at least one); a bytearray is extended in place."""
    rest = -len(level) % BLOCK_SIZE
    if rest or not level:
        level += bytes(rest or BLOCK_SIZE)
    return level


def _blocks(data: bytes) -> Iterator[memoryview]:
    view = memoryview(data)
    for offset in range(0, len(view), BLOCK_SIZE):
        yield view[offset:offset + BLOCK_SIZE]
