"""The web chat: a WebSocket the ``/chat`` page talks to, and its sender."""
