"""an index to find the jobs and sub-customers of a customer: a parent's unused credit pays the
invoices of those billed with it, so every load of the customers with credit looks for them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 15:30:00
"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_customer_company_parent', 'customer', ['company_id', 'parent_qbo_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_customer_company_parent', table_name='customer')
