"""dashboard figures computed after a sync

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:02:00
"""
from alembic import op
import sqlalchemy as sa
import qbo_collector.db.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dashboard_figures',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('on', sa.Date(), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('computed_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_dashboard_figures_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_dashboard_figures'))
    )


def downgrade() -> None:
    op.drop_table('dashboard_figures')
