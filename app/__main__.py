"""`python -m app migrate|serve`, the same as the `opsml-server` command."""

from app.cli import main

main()
