"""The ledger's Merkle tree against a literal RFC 9162 recursion, and its proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.merkle import (
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 2.1.1 writes it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def records(n: int) -> list[bytes]:
    return [f"record-{i}".encode() for i in range(n)]


def tree_of(n: int) -> MerkleTree:
    tree = MerkleTree()
    for record in records(n):
        tree.append(record)
    return tree


def test_leaf_and_node_hashes_use_domain_separation() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert MerkleTree().root() == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 100])
def test_root_matches_rfc_recursion_for_every_prefix(n: int) -> None:
    tree = tree_of(n)
    leaves = records(n)
    for size in range(n + 1):
        assert tree.root(size) == reference_root(leaves[:size])


@pytest.mark.parametrize("n", [1, 2, 3, 6, 8, 11, 21])
def test_every_inclusion_proof_verifies(n: int) -> None:
    tree = tree_of(n)
    for size in range(1, n + 1):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert verify_inclusion(tree.leaf(index), index, size, proof, root)


@pytest.mark.parametrize("n", [2, 5, 8, 13, 20])
def test_every_consistency_proof_verifies(n: int) -> None:
    tree = tree_of(n)
    for new in range(n + 1):
        for old in range(new + 1):
            proof = tree.consistency_proof(old, new)
            assert verify_consistency(old, new, tree.root(old), tree.root(new), proof)


def test_inclusion_fails_for_changed_record() -> None:
    tree = tree_of(10)
    proof = tree.inclusion_proof(3)
    assert not verify_inclusion(leaf_hash(b"record-X"), 3, 10, proof, tree.root())
    assert not verify_inclusion(tree.leaf(3), 4, 10, proof, tree.root())


def test_consistency_fails_when_history_is_rewritten() -> None:
    tree = tree_of(12)
    forged = MerkleTree(leaf_hash(r) for r in [*records(5), b"forged", *records(12)[6:]])
    proof = forged.consistency_proof(7, 12)
    assert not verify_consistency(7, 12, tree.root(7), forged.root(12), proof)
    assert not verify_consistency(7, 12, tree.root(7), tree.root(12), proof[:-1])


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=300),
    data=st.data(),
)
def test_proofs_hold_for_random_sizes(size: int, data: st.DataObject) -> None:
    tree = tree_of(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=0, max_value=size))
    assert verify_inclusion(tree.leaf(index), index, size, tree.inclusion_proof(index), tree.root())
    assert verify_consistency(old, size, tree.root(old), tree.root(), tree.consistency_proof(old))
    tampered = bytearray(tree.leaf(index))
    tampered[0] ^= 1
    assert not verify_inclusion(
        bytes(tampered), index, size, tree.inclusion_proof(index), tree.root()
    )


def test_rejects_out_of_range_requests() -> None:
    tree = tree_of(4)
    with pytest.raises(ValueError, match="not in a tree"):
        tree.inclusion_proof(4)
    with pytest.raises(ValueError, match="leaves"):
        tree.root(5)
    with pytest.raises(ValueError, match="consistent"):
        tree.consistency_proof(3, 2)


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=300),
    data=st.data(),
)
def test_batched_inclusion_proofs_equal_one_by_one(size: int, data: st.DataObject) -> None:
    tree = tree_of(size + data.draw(st.integers(min_value=0, max_value=20)))
    indexes = data.draw(st.lists(st.integers(min_value=0, max_value=size - 1), max_size=60))
    batched = tree.inclusion_proofs(indexes, size)
    assert batched == [tree.inclusion_proof(index, size) for index in indexes]
    for index, proof in zip(indexes, batched, strict=True):
        assert verify_inclusion(tree.leaf(index), index, size, proof, tree.root(size))


def test_batched_inclusion_proofs_reject_out_of_range() -> None:
    tree = tree_of(4)
    with pytest.raises(ValueError, match="not in a tree of 4"):
        tree.inclusion_proofs([0, 4], 4)
    with pytest.raises(ValueError, match="has 4 leaves"):
        tree.inclusion_proofs([0], 5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=70), min_size=1, max_size=6))
def test_extending_in_batches_builds_the_same_tree(batches: list[int]) -> None:
    one_by_one = MerkleTree()
    batched = MerkleTree()
    counter = 0
    for size in batches:
        digests = [leaf_hash(b"%d" % (counter + n)) for n in range(size)]
        counter += size
        for digest in digests:
            one_by_one.append_leaf_hash(digest)
        batched.extend_leaf_hashes(digests)
        assert batched.size == one_by_one.size
        assert batched._levels == one_by_one._levels
        assert batched.root() == one_by_one.root()


def test_extending_rejects_a_short_hash() -> None:
    tree = tree_of(3)
    with pytest.raises(ValueError, match="32 bytes"):
        tree.extend_leaf_hashes([b"\x00" * 32, b"\x00" * 31])
    assert tree.size == 3
