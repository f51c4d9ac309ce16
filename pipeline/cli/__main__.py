"""``python -m pipeline.cli``: the same as the ``healthpipe`` command."""

from pipeline.cli import main

raise SystemExit(main())
