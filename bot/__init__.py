"""Đồng Hành: a Vietnamese-language chat service for people at risk of trafficking."""

__version__ = "0.1.0"
