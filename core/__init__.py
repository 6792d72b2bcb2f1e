"""The pure core: the check-in conversation and the schedule rules.

Nothing here imports Flask, SQLAlchemy or an SDK; time comes in as an argument.
"""
