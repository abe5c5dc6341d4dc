"""what the "Late fee" lines of an invoice add up to (``late_fee_mode`` "line"): no fee is charged on
them, and such an invoice is no longer taken for a fee invoice — the mapping used to flag any invoice
with one fee line, which stopped its fees after the first. Every company with an invoice so flagged
reads its invoices in full at its next sync, which sets both columns from the lines.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 21:00:00
"""
import sqlalchemy as sa
from alembic import op

import qbo_collector.db.types


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.add_column(sa.Column('fee_lines', qbo_collector.db.types.Amount(), nullable=False, server_default='0'))
    op.execute("UPDATE sync_cursor SET full_sync_at = NULL WHERE entity = 'Invoice' AND company_id IN "
               "(SELECT DISTINCT company_id FROM invoice WHERE is_late_fee)")


def downgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.drop_column('fee_lines')
