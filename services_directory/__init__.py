"""The curated directory of support services (YAML per scope, schema and loader).

Its records and loader arrive with the knowledge issue; the package exists so that
``actions/`` can import it without reaching into ``bot``.
"""
