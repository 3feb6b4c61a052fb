"""What methods optimise: one file per objective (the KRR outer loss of SSDD and KRR-ST, ...)."""

from ssdd_cli.distill.objectives.base import Objective

__all__ = ["Objective"]
