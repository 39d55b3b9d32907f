"""Channels: one subpackage per platform, each verifying, parsing and sending."""
