"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:07:55.796525
"""
from alembic import op
import sqlalchemy as sa
import qbo_collector.db.types



revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('created_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('email', name=op.f('uq_app_user_email'))
    )
    op.create_table('company',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('realm_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('status', sa.Enum('connected', 'needs_reconnect', 'disconnected', name='companystatus', native_enum=False, length=20), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=True),
    sa.Column('created_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('connected_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('last_sync_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', qbo_collector.db.types.UTC(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company')),
    sa.UniqueConstraint('realm_id', name=op.f('uq_company_realm_id'))
    )
    op.create_table('activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=True),
    sa.Column('at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('customer_qbo_id', sa.String(length=32), nullable=True),
    sa.Column('invoice_qbo_id', sa.String(length=32), nullable=True),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_activity_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity'))
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_company_at', ['company_id', 'at'], unique=False)
        batch_op.create_index('ix_activity_company_customer', ['company_id', 'customer_qbo_id'], unique=False)

    op.create_table('credit_memo',
    sa.Column('customer_qbo_id', sa.String(length=32), nullable=True),
    sa.Column('doc_number', sa.String(length=64), nullable=True),
    sa.Column('txn_date', sa.Date(), nullable=True),
    sa.Column('total', qbo_collector.db.types.Amount(), nullable=False),
    sa.Column('balance', qbo_collector.db.types.Amount(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('qbo_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.String(length=32), nullable=True),
    sa.Column('qbo_updated_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('synced_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_credit_memo_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_memo')),
    sa.UniqueConstraint('company_id', 'qbo_id', name=op.f('uq_credit_memo_company_id'))
    )
    op.create_table('customer',
    sa.Column('display_name', sa.String(length=500), nullable=False),
    sa.Column('company_name', sa.String(length=500), nullable=True),
    sa.Column('given_name', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('mobile', sa.String(length=64), nullable=True),
    sa.Column('country', sa.String(length=64), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('balance', qbo_collector.db.types.Amount(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('term_qbo_id', sa.String(length=32), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('policy_name', sa.String(length=64), nullable=True),
    sa.Column('excluded', sa.Boolean(), nullable=False),
    sa.Column('fees_waived', sa.Boolean(), nullable=False),
    sa.Column('email_stopped', sa.String(length=64), nullable=True),
    sa.Column('sms_stopped', sa.String(length=64), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('qbo_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.String(length=32), nullable=True),
    sa.Column('qbo_updated_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('synced_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_customer_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer')),
    sa.UniqueConstraint('company_id', 'qbo_id', name=op.f('uq_customer_company_id'))
    )
    op.create_table('invoice',
    sa.Column('doc_number', sa.String(length=64), nullable=True),
    sa.Column('customer_qbo_id', sa.String(length=32), nullable=False),
    sa.Column('txn_date', sa.Date(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('due_date_derived', sa.String(length=32), nullable=True),
    sa.Column('total', qbo_collector.db.types.Amount(), nullable=False),
    sa.Column('balance', qbo_collector.db.types.Amount(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('term_qbo_id', sa.String(length=32), nullable=True),
    sa.Column('bill_email', sa.String(length=320), nullable=True),
    sa.Column('po_number', sa.String(length=128), nullable=True),
    sa.Column('invoice_link', sa.Text(), nullable=True),
    sa.Column('email_status', sa.String(length=32), nullable=True),
    sa.Column('status', sa.Enum('open', 'paid', 'voided', 'deleted', name='invoicestatus', native_enum=False, length=16), nullable=False),
    sa.Column('is_late_fee', sa.Boolean(), nullable=False),
    sa.Column('fee_for_qbo_id', sa.String(length=32), nullable=True),
    sa.Column('fees_waived', sa.Boolean(), nullable=False),
    sa.Column('next_action_on', sa.Date(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('qbo_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.String(length=32), nullable=True),
    sa.Column('qbo_updated_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('synced_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_invoice_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice')),
    sa.UniqueConstraint('company_id', 'qbo_id', name=op.f('uq_invoice_company_id'))
    )
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_company_customer', ['company_id', 'customer_qbo_id'], unique=False)
        batch_op.create_index('ix_invoice_company_next_action', ['company_id', 'next_action_on'], unique=False)
        batch_op.create_index('ix_invoice_company_status_due', ['company_id', 'status', 'due_date'], unique=False)

    op.create_table('membership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_membership_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_membership_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership')),
    sa.UniqueConstraint('user_id', 'company_id', name=op.f('uq_membership_user_id'))
    )
    op.create_table('oauth_state',
    sa.Column('state', sa.String(length=64), nullable=False),
    sa.Column('origin', sa.String(length=8), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('used_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_oauth_state_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state', name=op.f('pk_oauth_state'))
    )
    op.create_table('payment',
    sa.Column('customer_qbo_id', sa.String(length=32), nullable=True),
    sa.Column('txn_date', sa.Date(), nullable=True),
    sa.Column('total', qbo_collector.db.types.Amount(), nullable=False),
    sa.Column('unapplied', qbo_collector.db.types.Amount(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('qbo_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.String(length=32), nullable=True),
    sa.Column('qbo_updated_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('synced_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_payment_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment')),
    sa.UniqueConstraint('company_id', 'qbo_id', name=op.f('uq_payment_company_id'))
    )
    op.create_table('payment_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('payment_qbo_id', sa.String(length=32), nullable=False),
    sa.Column('invoice_qbo_id', sa.String(length=32), nullable=False),
    sa.Column('amount', qbo_collector.db.types.Amount(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_payment_link_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_link')),
    sa.UniqueConstraint('company_id', 'payment_qbo_id', 'invoice_qbo_id', name=op.f('uq_payment_link_company_id'))
    )
    with op.batch_alter_table('payment_link', schema=None) as batch_op:
        batch_op.create_index('ix_payment_link_invoice', ['company_id', 'invoice_qbo_id'], unique=False)

    op.create_table('sync_cursor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('changed_since', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('full_sync_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('full_sync_position', sa.Integer(), nullable=True),
    sa.Column('full_sync_started_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_sync_cursor_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_cursor')),
    sa.UniqueConstraint('company_id', 'entity', name=op.f('uq_sync_cursor_company_id'))
    )
    op.create_table('term',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('due_days', sa.Integer(), nullable=True),
    sa.Column('discount_percent', qbo_collector.db.types.Amount(), nullable=True),
    sa.Column('discount_days', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('qbo_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.String(length=32), nullable=True),
    sa.Column('qbo_updated_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('synced_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_term_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_term')),
    sa.UniqueConstraint('company_id', 'qbo_id', name=op.f('uq_term_company_id'))
    )
    op.create_table('token',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('access_token', qbo_collector.db.types.EncryptedText(), nullable=False),
    sa.Column('refresh_token', qbo_collector.db.types.EncryptedText(), nullable=False),
    sa.Column('access_expires_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.Column('refresh_expires_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('refresh_hard_expires_at', qbo_collector.db.types.UTC(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', qbo_collector.db.types.UTC(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_token_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_token'))
    )


def downgrade() -> None:
    op.drop_table('token')
    op.drop_table('term')
    op.drop_table('sync_cursor')
    with op.batch_alter_table('payment_link', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_link_invoice')

    op.drop_table('payment_link')
    op.drop_table('payment')
    op.drop_table('oauth_state')
    op.drop_table('membership')
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_company_status_due')
        batch_op.drop_index('ix_invoice_company_next_action')
        batch_op.drop_index('ix_invoice_company_customer')

    op.drop_table('invoice')
    op.drop_table('customer')
    op.drop_table('credit_memo')
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_company_customer')
        batch_op.drop_index('ix_activity_company_at')

    op.drop_table('activity')
    op.drop_table('company')
    op.drop_table('app_user')
