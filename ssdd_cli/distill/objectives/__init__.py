"""What methods optimise: one file per objective (the KRR outer loss of SSDD and KRR-ST in
`krr.py`, the DM family's class-wise distribution matching in `matching.py`, with its networks in
`networks.py` and `queue.py` and its per-class real batches in `classes.py`)."""

from ssdd_cli.distill.objectives.base import Objective

__all__ = ["Objective"]
