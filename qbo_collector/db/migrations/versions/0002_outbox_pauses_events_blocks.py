"""outbox pauses events blocks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:17:38.505171
"""
from alembic import op
import sqlalchemy as sa
import qbo_collector.db.types



revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contact_block',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('at', qbo_collector.db.types.UTC(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_block')),
    sa.UniqueConstraint('channel', 'address', name=op.f('uq_contact_block_channel'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('status', sa.Enum('planned', 'sending', 'sent', 'failed', 'cancelled', 'unknown', name='outboxstatus', native_enum=False, length=16), nullable=False),
    sa.Column('customer_qbo_id', sa.String(length=32), nullable=True),
    sa.Column('invoice_ids', sa.JSON(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('template_key', sa.String(length=64), nullable=True),
    sa.Column('amount', qbo_collector.db.types.Amount(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('due_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('provider_id', sa.String(length=128), nullable=True),
    sa.Column('provider_status', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('created_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('updated_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('sending_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('sent_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_outbox_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_dedupe_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_company_customer', ['company_id', 'customer_qbo_id'], unique=False)
        batch_op.create_index('ix_outbox_company_status_due', ['company_id', 'status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_provider_id'), ['provider_id'], unique=False)

    op.create_table('pause',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('customer_qbo_id', sa.String(length=32), nullable=False),
    sa.Column('invoice_ids', sa.JSON(), nullable=False),
    sa.Column('start_on', sa.Date(), nullable=False),
    sa.Column('until_on', sa.Date(), nullable=True),
    sa.Column('amount', qbo_collector.db.types.Amount(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('resolved_on', sa.Date(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_pause_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_pause_created_by_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pause'))
    )
    with op.batch_alter_table('pause', schema=None) as batch_op:
        batch_op.create_index('ix_pause_company_customer', ['company_id', 'customer_qbo_id'], unique=False)

    op.create_table('provider_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('event_key', sa.String(length=255), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_provider_event_outbox_id_outbox'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_event')),
    sa.UniqueConstraint('provider', 'event_key', name=op.f('uq_provider_event_provider'))
    )
    with op.batch_alter_table('provider_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_event_outbox_id'), ['outbox_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('provider_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_event_outbox_id'))

    op.drop_table('provider_event')
    with op.batch_alter_table('pause', schema=None) as batch_op:
        batch_op.drop_index('ix_pause_company_customer')

    op.drop_table('pause')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_provider_id'))
        batch_op.drop_index('ix_outbox_company_status_due')
        batch_op.drop_index('ix_outbox_company_customer')

    op.drop_table('outbox')
    op.drop_table('contact_block')
