"""which credit memos a payment used (as of a past day, aging adds back credit used later)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:00:00

The payments already mirrored are read again in full by the next sync (their cursor's
``full_sync_at`` is cleared), so the links of credit memos used before this version are there too.
"""
from alembic import op
import sqlalchemy as sa
import qbo_collector.db.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_memo_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('payment_qbo_id', sa.String(length=32), nullable=False),
    sa.Column('credit_memo_qbo_id', sa.String(length=32), nullable=False),
    sa.Column('amount', qbo_collector.db.types.Amount(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_credit_memo_link_company_id_company'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_memo_link')),
    sa.UniqueConstraint('company_id', 'payment_qbo_id', 'credit_memo_qbo_id',
                        name=op.f('uq_credit_memo_link_company_id'))
    )
    with op.batch_alter_table('credit_memo_link', schema=None) as batch_op:
        batch_op.create_index('ix_credit_memo_link_memo', ['company_id', 'credit_memo_qbo_id'], unique=False)
    op.execute("UPDATE sync_cursor SET full_sync_at = NULL WHERE entity = 'Payment'")


def downgrade() -> None:
    with op.batch_alter_table('credit_memo_link', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_memo_link_memo')
    op.drop_table('credit_memo_link')
