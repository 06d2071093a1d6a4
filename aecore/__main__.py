"""``python -m aecore`` runs the command line."""

from aecore.cli import main

raise SystemExit(main())
