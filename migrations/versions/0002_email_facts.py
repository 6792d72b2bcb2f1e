"""emails carry what they say; the relay renders them

Revision ID: 0002_email_facts
Revises: 0001_initial
Create Date: 2026-12-04 19:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0002_email_facts'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows queued before this revision were rendered already: their facts stay empty.
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=False, server_default='ja'))
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.alter_column('subject', existing_type=sa.String(length=300), nullable=True)
        batch_op.alter_column('text_body', existing_type=sa.Text(), nullable=True)
        batch_op.alter_column('html_body', existing_type=sa.Text(), nullable=True)
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.alter_column('language', server_default=None)
        batch_op.alter_column('facts', server_default=None)


def downgrade() -> None:
    # An email not yet rendered has no text the old schema could hold; refuse rather than lose it.
    unrendered = op.get_bind().execute(sa.text("SELECT count(*) FROM emails WHERE subject IS NULL")).scalar()
    if unrendered:
        raise RuntimeError(f"{unrendered} queued email(s) are not rendered yet: let the relay send them first")
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.alter_column('html_body', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('text_body', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('subject', existing_type=sa.String(length=300), nullable=False)
        batch_op.drop_column('facts')
        batch_op.drop_column('language')
