"""Decoding an artifact (SSDD Algorithm 2): its images and targets in memory, or on disk as PNGs."""

from ssdd_cli.artifact.materialize import DistilledSet, materialize
from ssdd_cli.artifact.reconstruct import Reconstruction, write_reconstruction

__all__ = ["DistilledSet", "Reconstruction", "materialize", "write_reconstruction"]
