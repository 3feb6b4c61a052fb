"""Evaluation protocols, one file each: `linear`, `knn`, `finetune`, `align` probe a backbone;
`classify` trains on a labelled set."""

from ssdd_cli.train.protocols import align, classify, finetune, knn, linear  # noqa: F401  (registers)
from ssdd_cli.train.protocols.align import AlignConfig
from ssdd_cli.train.protocols.base import (
    BACKBONE,
    LABELLED_SET,
    PROTOCOLS,
    EvalContext,
    Protocol,
    ProtocolResult,
    few_shot_indices,
    get_protocol,
    list_protocols,
    register_protocol,
)
from ssdd_cli.train.protocols.classify import ClassifyConfig
from ssdd_cli.train.protocols.finetune import FinetuneConfig
from ssdd_cli.train.protocols.knn import KNNConfig

__all__ = [
    "BACKBONE",
    "LABELLED_SET",
    "PROTOCOLS",
    "AlignConfig",
    "ClassifyConfig",
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
