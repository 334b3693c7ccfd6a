"""The dm-verity hasher against a naive, independent merkle-tree computation."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc

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


def test_tree_is_written_top_level_first_in_whole_blocks():
    hasher = VerityHasher()
    hasher.add_zero_blocks(128 * 130)
    out = io.BytesIO()
    hasher.write_tree(out)
    tree = out.getvalue()
    assert len(tree) == (1 + 2 + 130) * BLOCK_SIZE
    leaves = tree[3 * BLOCK_SIZE:]
    assert leaves[:32] == hashlib.sha256(SALT + bytes(BLOCK_SIZE)).digest()
    assert hashlib.sha256(SALT + tree[:BLOCK_SIZE]).hexdigest() == hasher.root_hex()


@pytest.mark.parametrize("blocks", [1, 129, 128 * 128 + 1])
def test_spilled_leaves_give_the_same_root_and_tree(blocks):
    """Digests moved to the temporary file (here after every hash block) change nothing,
    including patches that land in the spilled part."""
    data = bytearray(os.urandom(blocks * BLOCK_SIZE))
    patched = os.urandom(BLOCK_SIZE)
    trees = []
    for spill_at in (BLOCK_SIZE, 1 << 30):
        hasher = VerityHasher(spill_at=spill_at)
        hasher.add_blocks(data)
        hasher.add_zero_blocks(300)
        hasher.set_block(0, patched)
        out = io.BytesIO()
        hasher.write_tree(out)
        trees.append((hasher.root_hex(), out.getvalue()))
    expected = patched + bytes(data[BLOCK_SIZE:]) + bytes(300 * BLOCK_SIZE)
    assert trees[0] == trees[1]
    assert trees[0][0] == naive_root(expected)


def test_memory_stays_bounded_for_a_huge_image():
    """2**22 blocks (a 16 GiB image, 128 MiB of leaf digests) in a few MiB of memory."""
    hasher = VerityHasher()
    tracemalloc.start()
    try:
        hasher.add_zero_blocks(1 << 22)
        hasher.set_block(5, os.urandom(BLOCK_SIZE))
        hasher.root()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20, peak


def test_rejects_partial_blocks_and_unknown_patches():
    hasher = VerityHasher()
    with pytest.raises(ValueError):
        hasher.add_blocks(b"x" * 100)
    with pytest.raises(IndexError):
        hasher.set_block(0, bytes(BLOCK_SIZE))
