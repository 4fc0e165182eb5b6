"""``python -m adabench.report``."""

from adabench.report import main

raise SystemExit(main())
