"""Rasa's callback channel."""
