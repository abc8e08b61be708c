"""`python -m modelpack` runs the CLI."""

from modelpack.cli.main import main

main()
