"""An append-only Merkle tree in the style of RFC 9162 (Certificate Transparency 2.0), section 2.1.

Leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || left || right)``; the tree
over ``n`` leaves splits at the largest power of two below ``n``. Every perfect subtree hash
is kept (level ``k`` holds the roots of aligned subtrees of ``2**k`` leaves), so any root,
inclusion proof or consistency proof costs O(log n) look-ups and appends are amortised O(1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """The tree over leaf hashes, each level a contiguous byte array of 32-byte nodes."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        for digest in leaf_hashes:
            self.append_leaf_hash(digest)

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def append(self, data: bytes) -> int:
        """Add a record; answer its leaf index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, digest: bytes) -> int:
        if len(digest) != HASH_SIZE:
            raise ValueError("a leaf hash has 32 bytes")
        index = self.size
        self._levels[0] += digest
        level, position = 0, index
        # Each completed pair of subtrees yields the root of a perfect subtree one level up.
        while position & 1:
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            upper = self._levels[level + 1]
            upper += node_hash(self._node(level, position - 1), self._node(level, position))
            level, position = level + 1, position >> 1
        return index

    def extend_leaf_hashes(self, digests: Sequence[bytes]) -> None:
        """Append many leaf hashes at once; the same tree as appending them one by one.

        Rebuilding a ledger of a million leaves one ``append_leaf_hash`` at a time costs a
        Python loop step and a bytes copy per node; here each level is extended by one pass
        over the nodes the new leaves complete.
        """
        if any(len(digest) != HASH_SIZE for digest in digests):
            raise ValueError("a leaf hash has 32 bytes")
        sha256 = hashlib.sha256
        lower = self._levels[0]
        start = len(lower) // HASH_SIZE  # first new node of the level below
        lower += b"".join(digests)
        level = 0
        while True:
            end = len(lower) // HASH_SIZE
            first = start - (start & 1)  # a left sibling stored before this batch pairs up too
            pairs = (end - first) // 2
            if pairs == 0:
                return
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            upper = self._levels[level + 1]
            view = memoryview(lower)
            offset = first * HASH_SIZE
            upper += b"".join(
                sha256(b"\x01" + view[at : at + 2 * HASH_SIZE]).digest()
                for at in range(offset, offset + pairs * 2 * HASH_SIZE, 2 * HASH_SIZE)
            )
            view.release()
            start, lower, level = first // 2, upper, level + 1

    def leaf(self, index: int) -> bytes:
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """The tree head over the first ``size`` leaves (default: all)."""
        size = self.size if size is None else self._checked_size(size)
        return self._subtree(0, size) if size else _EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size])."""
        size = self.size if size is None else self._checked_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        return self._path(index, 0, size)

    def inclusion_proofs(
        self, indexes: Iterable[int], size: int | None = None
    ) -> list[list[bytes]]:
        """PATH(index, D[0:size]) for each index, like :meth:`inclusion_proof`.

        Proofs for many leaves of one tree share the roots of the tree's imperfect right-edge
        subtrees; one memo computes each of those once instead of once per proof (O(log n)
        hashes each), which made bundle exports of tens of thousands of records spend seconds
        re-hashing the same nodes.
        """
        size = self.size if size is None else self._checked_size(size)
        memo: dict[tuple[int, int], bytes] = {}
        proofs = []
        for index in indexes:
            if not 0 <= index < size:
                raise ValueError(f"leaf {index} is not in a tree of {size}")
            proofs.append(self._path_memo(index, size, memo))
        return proofs

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[0:new_size])."""
        new_size = self.size if new_size is None else self._checked_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"cannot prove {old_size} consistent with {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, complete=True)

    def _checked_size(self, size: int) -> int:
        if not 0 <= size <= self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {size}")
        return size

    def _node(self, level: int, position: int) -> bytes:
        offset = position * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]); ``start`` is always aligned as the RFC recursion guarantees."""
        n = end - start
        if n & (n - 1) == 0:
            return self._node(n.bit_length() - 1, start >> (n.bit_length() - 1))
        k = _split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _path(self, index: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if index < start + k:
            return [*self._path(index, start, start + k), self._subtree(start + k, end)]
        return [*self._path(index, start + k, end), self._subtree(start, start + k)]

    def _path_memo(self, index: int, size: int, memo: dict[tuple[int, int], bytes]) -> list[bytes]:
        """``_path(index, 0, size)`` iteratively; ``memo`` keeps the imperfect (right-edge)
        sibling roots, of which a tree has at most log2(size)."""
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                sibling = (start + k, end)
                end = start + k
            else:
                sibling = (start, start + k)
                start += k
            n = sibling[1] - sibling[0]
            if n & (n - 1) == 0:  # perfect: one stored node, nothing to remember
                path.append(self._node(n.bit_length() - 1, sibling[0] >> (n.bit_length() - 1)))
                continue
            node = memo.get(sibling)
            if node is None:
                node = memo[sibling] = self._subtree(*sibling)
            path.append(node)
        path.reverse()
        return path

    def _subproof(self, m: int, start: int, end: int, *, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self._subtree(start, end)]
        k = _split(n)
        if m <= k:
            return [
                *self._subproof(m, start, start + k, complete=complete),
                self._subtree(start + k, end),
            ]
        return [
            *self._subproof(m - k, start + k, end, complete=False),
            self._subtree(start, start + k),
        ]


def _shift_until_odd(fn: int, sn: int) -> tuple[int, int]:
    while not fn & 1 and fn:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(
    digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` put leaf hash ``digest`` at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, digest
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree of ``old_size`` a prefix of the tree of ``new_size``?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    if fn & 1:
        while fn & 1:
            fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
