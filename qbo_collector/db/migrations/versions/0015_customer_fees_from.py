"""the day a customer's invoices began to bear fees under the rules they bear now (given another policy,
taken back from exclusion, a fee waiver lifted): no fee period before it is charged

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09 10:00:00

Customers changed before it keep none (NULL): what they were back-charged then is in the outbox already.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.add_column(sa.Column('fees_from', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.drop_column('fees_from')
