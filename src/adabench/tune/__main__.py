"""``python -m adabench.tune``: the same as ``adabench tune`` (the workers it starts run this)."""

from adabench.tune.cli import main

raise SystemExit(main())
