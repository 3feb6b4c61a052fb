"""`python -m ssdd_cli ...` (and `torchrun --nproc_per_node K -m ssdd_cli ...`): the `ssdd` CLI."""

from ssdd_cli.cli import main

if __name__ == "__main__":
    main()
