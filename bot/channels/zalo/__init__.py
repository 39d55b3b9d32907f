"""Zalo Official Account: the OA webhook in, the customer-service message API out."""
