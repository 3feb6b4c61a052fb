"""Distillation methods: a registry of `Method`s (ssdd, krr-st, random, kmeans)."""

from ssdd_cli.distill.methods import krr_st, select, ssdd  # noqa: F401  (registers)
from ssdd_cli.distill.methods.base import (
    METHODS,
    Export,
    Method,
    Optimization,
    get_method,
    list_methods,
    register_method,
)

__all__ = ["METHODS", "Export", "Method", "Optimization", "get_method", "list_methods", "register_method"]
