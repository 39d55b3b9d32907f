"""Telegram: webhook or polling in, the Bot API out, through python-telegram-bot."""
