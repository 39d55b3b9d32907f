"""Sanic blueprints for the service's own pages and APIs; error mapping to HTTP."""
