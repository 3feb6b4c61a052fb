"""Distillation methods: a registry of `Method`s (ssdd, krr-st, random, kmeans, and the DM
family: dm, datadam, iid, dsdm, idm)."""

from ssdd_cli.distill.methods import datadam, dm, dsdm, idm, iid, krr_st, select, ssdd  # noqa: F401  (registers)
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
