"""VerifiedLayer on real files: plain blobs are read ahead by a worker thread; what the
consumer gets, which errors reach it and that no thread outlives the stream."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from azext_confcom.errors import ArchiveError, DigestMismatchError
from azext_confcom.images.streams import CHUNK, FileSlice, VerifiedLayer

DATA = hashlib.shake_256(b"layer").digest(3 * CHUNK + 12345)
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def blob_fd(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def read_all(stream: VerifiedLayer, step: int = 100_000) -> bytes:
    out, buf = bytearray(), bytearray(step)
    while n := stream.readinto(buf):
        out += buf[:n]
    return bytes(out)


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "layer-read"]


@pytest.mark.parametrize("blob_digest", [None, DIGEST])
def test_plain_blob_is_served_whole_and_verified(blob_fd, blob_digest):
    with VerifiedLayer(FileSlice(blob_fd, 0, len(DATA), "blob"), diff_id=DIGEST,
                       blob_digest=blob_digest, what="layer") as stream:
        assert read_all(stream) == DATA
    assert not readers()


def test_a_mismatch_fails_at_the_end(blob_fd):
    wrong = "sha256:" + "0" * 64
    stream = VerifiedLayer(FileSlice(blob_fd, 0, len(DATA), "blob"), diff_id=wrong,
                           blob_digest=None, what="layer 1")
    buf = bytearray(len(DATA))
    assert stream.readinto(buf) == CHUNK          # the first chunk comes before the check
    with pytest.raises(DigestMismatchError, match="layer 1"):
        read_all(stream)
    stream.close()


def test_a_read_error_reaches_the_consumer(blob_fd):
    """The slice claims more bytes than the file has: the read-ahead thread meets the end
    first, the consumer gets the error once it has read everything before it."""
    stream = VerifiedLayer(FileSlice(blob_fd, 0, len(DATA) + 1, "member 'x'"), diff_id=DIGEST,
                           blob_digest=None, what="layer")
    got = bytearray()
    with pytest.raises(ArchiveError, match="member 'x' is truncated"):
        buf = bytearray(4096)
        while n := stream.readinto(buf):
            got += buf[:n]
    assert bytes(got) == DATA
    stream.close()
    assert not readers()


def test_closing_early_stops_the_reader(blob_fd):
    stream = VerifiedLayer(FileSlice(blob_fd, 0, len(DATA), "blob"), diff_id=DIGEST,
                           blob_digest=None, what="layer")
    stream.readinto(bytearray(10))
    assert readers()
    stream.close()
    assert not readers()
