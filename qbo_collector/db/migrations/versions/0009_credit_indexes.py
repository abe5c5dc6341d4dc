"""indexes to find the customers with unused credit (payments' unapplied amounts, credit memos'
remaining credit): every run reads them, since that credit keeps invoices from being reminded

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:30:00
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_payment_company_unapplied', 'payment', ['company_id', 'unapplied'], unique=False)
    op.create_index('ix_credit_memo_company_balance', 'credit_memo', ['company_id', 'balance'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_credit_memo_company_balance', table_name='credit_memo')
    op.drop_index('ix_payment_company_unapplied', table_name='payment')
