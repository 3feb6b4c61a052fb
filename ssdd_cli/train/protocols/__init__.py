"""Evaluation protocols, one file each: `linear`, `knn`, `finetune`, `align`."""

from ssdd_cli.train.protocols import align, finetune, knn, linear  # noqa: F401  (registers)
from ssdd_cli.train.protocols.align import AlignConfig
from ssdd_cli.train.protocols.base import (
    PROTOCOLS,
    EvalContext,
    Protocol,
    ProtocolResult,
    few_shot_indices,
    get_protocol,
    list_protocols,
    register_protocol,
)
from ssdd_cli.train.protocols.finetune import FinetuneConfig
from ssdd_cli.train.protocols.knn import KNNConfig

__all__ = [
    "PROTOCOLS",
    "AlignConfig",
    "EvalContext",
    "FinetuneConfig",
    "KNNConfig",
    "Protocol",
    "ProtocolResult",
    "few_shot_indices",
    "get_protocol",
    "list_protocols",
    "register_protocol",
]
