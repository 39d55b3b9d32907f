"""Rasa's REST channel: the replies come back in the HTTP response."""
