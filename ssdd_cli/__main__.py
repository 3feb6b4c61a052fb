"""`python -m ssdd_cli`: the `ssdd` command line."""

from ssdd_cli.cli import main

main()
