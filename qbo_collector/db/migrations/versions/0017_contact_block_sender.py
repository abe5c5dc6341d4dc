"""a text opt-out holds for the sender it was sent to: ``contact_block.sender`` ("" for every sender,
as every block was until now; a company's own number or messaging service; "shared" for the server's)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-10 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contact_block', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender', sa.String(length=64), server_default='', nullable=False))
        batch_op.drop_constraint('uq_contact_block_channel', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_contact_block_channel'), ['channel', 'address', 'sender'])


def downgrade() -> None:
    # one block per address again: a number stopped for several senders keeps the oldest stop, for every company
    op.execute("DELETE FROM contact_block WHERE id NOT IN "
               "(SELECT MIN(id) FROM contact_block GROUP BY channel, address)")
    with op.batch_alter_table('contact_block', schema=None) as batch_op:
        batch_op.drop_constraint('uq_contact_block_channel', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_contact_block_channel'), ['channel', 'address'])
        batch_op.drop_column('sender')
