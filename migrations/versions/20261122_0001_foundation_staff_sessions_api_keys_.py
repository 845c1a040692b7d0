"""foundation: staff, sessions, api keys, audit log

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix'))
    )
    op.create_table('audit_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('ts', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_entries_seq'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_action'), ['action'], unique=False)
        batch_op.create_index('ix_audit_entries_actor', ['actor_type', 'actor_id'], unique=False)
        batch_op.create_index('ix_audit_entries_target', ['target_type', 'target_id'], unique=False)
        batch_op.create_index('ix_audit_entries_ts', ['ts'], unique=False)

    op.create_table('audit_tree_heads',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('signed_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.PrimaryKeyConstraint('tree_size', name=op.f('pk_audit_tree_heads'))
    )
    op.create_table('staff_accounts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=128), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('totp_secret', sa.LargeBinary(), nullable=True),
    sa.Column('totp_pending_secret', sa.LargeBinary(), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=False),
    sa.Column('failed_sign_ins', sa.Integer(), nullable=False),
    sa.Column('locked_until', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_accounts')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_accounts_username'))
    )
    op.create_table('staff_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('staff_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_accounts.id'], name=op.f('fk_staff_sessions_staff_id_staff_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_sessions_token_hash'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_staff_id'), ['staff_id'], unique=False)
    _make_audit_append_only()


# The audit log is append-only below the application too. An entry may be updated once, by the
# sequencer giving it its leaf index; after that, and for tree heads always, UPDATE and DELETE are
# refused by the database. (`tripguard audit verify` still catches a change made by someone who
# drops these triggers.)
def _make_audit_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION tripguard_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_entries' THEN
                    IF OLD.seq IS NULL THEN
                        RETURN NEW;
                    END IF;
                END IF;
                RAISE EXCEPTION 'audit entries are append-only';
            END $$;
            """
        )
        for table in ("audit_entries", "audit_tree_heads"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION tripguard_audit_append_only()"
            )
    else:
        refuse = "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END"
        op.execute(f"CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
                   f"WHEN OLD.seq IS NOT NULL {refuse}")
        op.execute(f"CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries {refuse}")
        op.execute(f"CREATE TRIGGER audit_tree_heads_no_update BEFORE UPDATE ON audit_tree_heads {refuse}")
        op.execute(f"CREATE TRIGGER audit_tree_heads_no_delete BEFORE DELETE ON audit_tree_heads {refuse}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("audit_entries", "audit_tree_heads"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS tripguard_audit_append_only()")
    else:
        for table in ("audit_entries", "audit_tree_heads"):
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_staff_id'))

    op.drop_table('staff_sessions')
    op.drop_table('staff_accounts')
    op.drop_table('audit_tree_heads')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_ts')
        batch_op.drop_index('ix_audit_entries_target')
        batch_op.drop_index('ix_audit_entries_actor')
        batch_op.drop_index(batch_op.f('ix_audit_entries_action'))

    op.drop_table('audit_entries')
    op.drop_table('api_keys')
