"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs and their verification.

Leaf hash ``H(0x00 || d)``, interior node ``H(0x01 || left || right)``, SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Accumulator:
    """The compact frontier of a growing tree: append leaves, read the root at any size in O(log n)."""

    def __init__(self) -> None:
        self.size = 0
        # (subtree size, hash), sizes strictly decreasing: the perfect subtrees of RFC 6962's split.
        self._stack: list[tuple[int, bytes]] = []
        # Perfect subtrees completed by append, as (level, index, hash): stored, they make proofs O(log n).
        self.completed: list[tuple[int, int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        size, value = 1, leaf
        start = self.size
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, value = left_size + size, node_hash(left, value)
            start -= left_size
            level = size.bit_length() - 1
            self.completed.append((level, start >> level, value))
        self._stack.append((size, value))
        self.size += 1

    def to_bytes(self) -> bytes:
        """The frontier, to be kept with a signed head: the next head starts from it."""
        return b"".join(size.to_bytes(8, "big") + value for size, value in self._stack)

    @classmethod
    def from_bytes(cls, frontier: bytes) -> Accumulator:
        if len(frontier) % 40:
            raise ValueError("a frontier is (8-byte size, 32-byte hash) pairs")
        accumulator = cls()
        for offset in range(0, len(frontier), 40):
            size = int.from_bytes(frontier[offset:offset + 8], "big")
            accumulator._stack.append((size, frontier[offset + 8:offset + 40]))
            accumulator.size += size
        sizes = [size for size, _ in accumulator._stack]
        if any(size & (size - 1) for size in sizes) or sizes != sorted(set(sizes), reverse=True):
            raise ValueError("not a frontier: sizes must be distinct powers of two, largest first")
        return accumulator

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes: O(n) hashes, O(log n) memory."""
    accumulator = Accumulator()
    for leaf in leaves:
        accumulator.append(leaf)
    return accumulator.root()


# MTH(D[start:start + count]) for a range the RFC 6962 recursion asks about (its start is a multiple of the
# largest power of two not above its length, so it splits into aligned perfect subtrees).
RangeRoot = Callable[[int, int], bytes]


def aligned_blocks(start: int, count: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) that make up such a range, largest first."""
    blocks = []
    while count:
        level = count.bit_length() - 1
        blocks.append((level, start >> level))
        start, count = start + (1 << level), count - (1 << level)
    return blocks


def fold_blocks(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its aligned blocks' hashes (largest first): RFC 6962 hashes the right side first."""
    value = hashes[-1]
    for left in reversed(hashes[:-1]):
        value = node_hash(left, value)
    return value


def _list_range_root(leaves: Sequence[bytes]) -> RangeRoot:
    return lambda start, count: root(leaves[start:start + count])


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1."""
    return inclusion_path(index, len(leaves), _list_range_root(leaves))


def inclusion_path(index: int, size: int, range_root: RangeRoot) -> list[bytes]:
    """PATH(m, D[n]) asking `range_root` for O(log n) subtree roots (stored ones make it O(log n) reads)."""
    if not 0 <= index < size:
        raise ValueError("index outside the tree")
    path: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            path.append(range_root(start + k, n - k))
            n = k
        else:
            path.append(range_root(start, k))
            start, n, m = start + k, n - k, m - k
    return list(reversed(path))


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 §2.1.2."""
    return consistency_path(first, len(leaves), _list_range_root(leaves))


def consistency_path(first: int, size: int, range_root: RangeRoot) -> list[bytes]:
    if not 0 < first <= size:
        raise ValueError("first size must be between 1 and the tree size")
    path: list[bytes] = []
    start, n, m, complete = 0, size, first, True
    while m != n:
        k = _split(n)
        if m <= k:
            path.append(range_root(start + k, n - k))
            n = k
        else:
            path.append(range_root(start, k))
            start, n, m, complete = start + k, n - k, m - k, False
    if not complete:
        path.append(range_root(start, n))
    return list(reversed(path))


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not proof and first_root == second_root
    if not 0 < first < second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # first is a power of two: its root is the first node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
