"""`python -m facemetric` runs the command line."""

from facemetric.cli import main

raise SystemExit(main())
