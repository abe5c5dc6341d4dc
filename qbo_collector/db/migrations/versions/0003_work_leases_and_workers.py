"""work leases and workers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:19:56.181434
"""
from alembic import op
import sqlalchemy as sa
import qbo_collector.db.types



revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('worker',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('started_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('seen_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('stopped_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_worker'))
    )
    op.create_table('work_lease',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('done_on', sa.Date(), nullable=True),
    sa.Column('done_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_work_lease_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('company_id', 'kind', name=op.f('pk_work_lease'))
    )
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.drop_column('lease_owner')
        batch_op.drop_column('lease_until')



def downgrade() -> None:
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', sa.DATETIME(), nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sa.VARCHAR(length=128), nullable=True))

    op.drop_table('work_lease')
    op.drop_table('worker')
