"""Telegram: webhook or polling in, the Bot API out, through python-telegram-bot.

The package itself stays light (python-telegram-bot loads only where Telegram is
configured): ``handler`` and ``sender`` import it.
"""

CHANNEL = "telegram"
