"""The course "Understand Flow Matching": content loading and the progress store.

Depends on the toolkit's public API only; never imported by the toolkit.
"""
