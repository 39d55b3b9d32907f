"""The server benchmarks behind ``donghanh bench``: turns, memory, startup, growth.

Each suite starts real ``donghanh serve`` processes on loopback, each with a fresh
instance and database, drives them over HTTP like real users would, and returns
``bot.bench.Figure`` values with their targets. ``suites`` holds the suites,
``server`` the instances and processes, ``workload`` the simulated users, ``seeding``
the bulk-inserted conversations of the growth suite.
"""
