"""rate limits shared by every process: calls paced at CARRIER_CPS across schedulers

Revision ID: 0003_rate_limits
Revises: 0002_email_facts
Create Date: 2026-12-04 19:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0003_rate_limits'
down_revision = '0002_email_facts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_limits',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('next_free_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_rate_limits'))
    )


def downgrade() -> None:
    op.drop_table('rate_limits')
