"""What the bot says that admins keep: FAQ answers (files and their checks)."""
