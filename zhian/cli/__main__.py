"""`python -m zhian.cli`: the same as the `zhian` command."""

from zhian.cli.main import main

raise SystemExit(main())
