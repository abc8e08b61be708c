"""`python -m modelpack` runs the CLI."""

from modelpack.cli import main

main()
