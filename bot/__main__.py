"""Lets ``python -m bot`` run the ``donghanh`` command."""

from bot.cli import main

raise SystemExit(main())
