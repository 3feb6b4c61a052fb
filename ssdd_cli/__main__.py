"""`python -m ssdd_cli ...` (and `torchrun --nproc_per_node K -m ssdd_cli ...`): the `ssdd` CLI."""

from ssdd_cli.cli.main import app

if __name__ == "__main__":
    app()
