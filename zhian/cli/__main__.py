"""`python -m zhian.cli`: the same as the `zhian` command (the tests start runs this way)."""

from zhian.cli.main import main

raise SystemExit(main())
