"""RFC 6962 Merkle tree: known vectors, and proofs that verify (and fail when altered)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripguard.audit import merkle


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 written as the recursion it defines."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(str(i).encode()) for i in range(n)]


def test_rfc6962_test_vectors() -> None:
    # From certificate-transparency-go merkle tests: the 8 leaves used across CT implementations.
    data = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                         "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
    leaves = [merkle.leaf_hash(d) for d in data]
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.root(leaves[:1]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.root(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=70))
def test_root_matches_reference(n: int) -> None:
    assert merkle.root(leaves_of(n)) == reference_root(leaves_of(n))


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_inclusion_proofs_verify_and_reject_tampering(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=64))
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    leaves = leaves_of(n)
    root = merkle.root(leaves)
    proof = merkle.inclusion_proof(index, leaves)
    assert merkle.verify_inclusion(index, n, leaves[index], proof, root)
    other = merkle.leaf_hash(b"forged")
    assert not merkle.verify_inclusion(index, n, other, proof, root)
    if n > 1:
        assert not merkle.verify_inclusion((index + 1) % n, n, leaves[index], proof, root)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_consistency_proofs_verify_and_reject_tampering(data: st.DataObject) -> None:
    second = data.draw(st.integers(min_value=1, max_value=64))
    first = data.draw(st.integers(min_value=1, max_value=second))
    leaves = leaves_of(second)
    proof = merkle.consistency_proof(first, leaves)
    first_root, second_root = merkle.root(leaves[:first]), merkle.root(leaves)
    assert merkle.verify_consistency(first, second, first_root, second_root, proof)
    if first < second:
        rewritten = list(leaves)
        rewritten[first - 1] = merkle.leaf_hash(b"rewritten history")
        assert not merkle.verify_consistency(first, second, first_root, merkle.root(rewritten), proof)


def test_accumulator_gives_root_at_every_size() -> None:
    leaves = leaves_of(40)
    accumulator = merkle.Accumulator()
    for size, leaf in enumerate(leaves, start=1):
        accumulator.append(leaf)
        assert accumulator.root() == reference_root(leaves[:size])


def test_a_frontier_kept_and_resumed_gives_the_same_roots() -> None:
    leaves = leaves_of(40)
    for cut in range(40):
        kept = merkle.Accumulator()
        for leaf in leaves[:cut]:
            kept.append(leaf)
        resumed = merkle.Accumulator.from_bytes(kept.to_bytes())
        assert resumed.size == cut
        for leaf in leaves[cut:]:
            resumed.append(leaf)
        assert resumed.root() == reference_root(leaves)


@pytest.mark.parametrize("frontier", [b"x" * 39, (3).to_bytes(8, "big") + b"h" * 32,
                                      (1).to_bytes(8, "big") + b"h" * 32 + (2).to_bytes(8, "big") + b"h" * 32])
def test_a_malformed_frontier_is_refused(frontier: bytes) -> None:
    with pytest.raises(ValueError):
        merkle.Accumulator.from_bytes(frontier)
