"""The terminal channel behind ``donghanh chat``: the same engine, no server."""
