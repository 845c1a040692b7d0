"""audit tree nodes: stored perfect-subtree hashes, so that proofs read O(log n) hashes

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29
"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_tree_nodes',
        sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('index', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('level', 'index', name=op.f('pk_audit_tree_nodes')),
    )
    # The nodes of the log as it stands (written here, not with the ORM: migrations outlive models).
    connection = op.get_bind()
    stack: list[tuple[int, bytes]] = []
    size = 0
    nodes: list[dict[str, object]] = []
    for (leaf,) in connection.execute(sa.text(
            "SELECT leaf_hash FROM audit_entries WHERE seq IS NOT NULL ORDER BY seq")):
        span, value, start = 1, bytes(leaf), size
        while stack and stack[-1][0] == span:
            left_span, left = stack.pop()
            span, value = left_span + span, hashlib.sha256(b"\x01" + left + value).digest()
            start -= left_span
            level = span.bit_length() - 1
            if level >= 4:  # tripguard.audit.service.MIN_STORED_LEVEL
                nodes.append({"level": level, "index": start >> level, "hash": value})
        stack.append((span, value))
        size += 1
    if nodes:
        table = sa.table('audit_tree_nodes', sa.column('level'), sa.column('index'), sa.column('hash'))
        for offset in range(0, len(nodes), 5000):
            connection.execute(table.insert(), nodes[offset:offset + 5000])


def downgrade() -> None:
    op.drop_table('audit_tree_nodes')
