"""Live updates: after-commit messages to dispatcher consoles and crew phones (SSE).

``bus``: publish inside a transaction, delivered after commit (memory or PostgreSQL LISTEN/NOTIFY
through Litestar Channels), server-sent event streams. ``routes``: the dispatchers' stream.
"""
