"""invoices already paid are settled for the planner (``next_action_on`` = NEVER): the interest up to the
day an invoice is paid is billed from this version on, for invoices paid from now; without this, the
first run after the upgrade would bill it, with a "thank you for paying" notice, for every invoice paid
late since the company was connected — months after the customer paid

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 00:30:00
"""
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE invoice SET next_action_on = '9999-12-31' WHERE status = 'paid'")


def downgrade() -> None:
    pass  # the dates it replaced are not needed by the versions before: they never read paid invoices
