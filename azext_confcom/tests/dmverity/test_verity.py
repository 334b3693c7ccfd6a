"""The dm-verity hasher against a naive, independent merkle-tree computation."""

from __future__ import annotations

import hashlib
import os

import pytest

from azext_confcom.dmverity.verity import BLOCK_SIZE, VerityHasher

SALT = bytes(32)


def naive_root(data: bytes) -> str:
    """Whole-buffer dm-verity root: hash levels until one block remains (kernel doc layout)."""
    level = b"".join(hashlib.sha256(SALT + data[i:i + BLOCK_SIZE]).digest()
                     for i in range(0, len(data), BLOCK_SIZE))
    while True:
        level += bytes(-len(level) % BLOCK_SIZE)
        if len(level) == BLOCK_SIZE:
            return hashlib.sha256(SALT + level).hexdigest()
        level = b"".join(hashlib.sha256(SALT + level[i:i + BLOCK_SIZE]).digest()
                         for i in range(0, len(level), BLOCK_SIZE))


@pytest.mark.parametrize("blocks", [1, 2, 127, 128, 129, 128 * 128, 128 * 128 + 1])
def test_root_matches_naive_tree(blocks):
    data = os.urandom(blocks * BLOCK_SIZE)
    hasher = VerityHasher()
    hasher.add_blocks(data)
    assert hasher.block_count == blocks
    assert hasher.root_hex() == naive_root(data)


def test_zero_blocks_and_out_of_order_patch():
    head, tail = os.urandom(3 * BLOCK_SIZE), os.urandom(BLOCK_SIZE)
    patched = os.urandom(BLOCK_SIZE)
    hasher = VerityHasher()
    hasher.add_blocks(head)
    hasher.add_zero_blocks(200)
    hasher.add_blocks(tail)
    hasher.set_block(1, patched)
    expected = head[:BLOCK_SIZE] + patched + head[2 * BLOCK_SIZE:] + bytes(200 * BLOCK_SIZE) + tail
    assert hasher.root_hex() == naive_root(expected)


def test_levels_are_whole_blocks_and_end_with_one_block():
    hasher = VerityHasher()
    hasher.add_zero_blocks(128 * 130)
    levels = hasher.levels()
    assert [len(level) // BLOCK_SIZE for level in levels] == [130, 2, 1]


def test_rejects_partial_blocks_and_unknown_patches():
    hasher = VerityHasher()
    with pytest.raises(ValueError):
        hasher.add_blocks(b"x" * 100)
    with pytest.raises(IndexError):
        hasher.set_block(0, bytes(BLOCK_SIZE))
