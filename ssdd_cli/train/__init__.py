"""Pretraining a backbone on an artifact, and the evaluation protocols.

    backbone, loss = pretrain(data.images, data.targets, data.labels,
                              PretrainConfig.from_preset(get_preset("digits"), budget=20),
                              in_channels=1, image_size=16, device=torch.device("cpu"))
    report = evaluate(backbone, load_source("digits"), "linear", seeds=3)
    report.to_dict()  # {"metrics": {"accuracy": {"mean", "std", "values"}}, ...}

Protocols (`list_protocols()`): `linear`, `finetune`, `knn`, `align`; few-shot with `shots=k`.
"""

from ssdd_cli.models import extract_features
from ssdd_cli.train.cka import linear_cka
from ssdd_cli.train.evaluate import EvalReport, MetricSummary, check_input_shape, evaluate
from ssdd_cli.train.knn import knn_predict
from ssdd_cli.train.linear import LinearProbe, LinearProbeConfig, accuracy
from ssdd_cli.train.pretrain import build_backbone, pretrain
from ssdd_cli.train.protocols import (
    PROTOCOLS,
    AlignConfig,
    EvalContext,
    FinetuneConfig,
    KNNConfig,
    Protocol,
    ProtocolResult,
    few_shot_indices,
    get_protocol,
    list_protocols,
    register_protocol,
)
from ssdd_cli.train.provenance import pretrain_drift, pretrain_metadata
from ssdd_cli.train.recipe import PretrainConfig
from ssdd_cli.train.regression import LinearMap, mean_squared_error

__all__ = [
    "PROTOCOLS",
    "AlignConfig",
    "EvalContext",
    "EvalReport",
    "FinetuneConfig",
    "KNNConfig",
    "LinearMap",
    "LinearProbe",
    "LinearProbeConfig",
    "MetricSummary",
    "PretrainConfig",
    "Protocol",
    "ProtocolResult",
    "accuracy",
    "build_backbone",
    "check_input_shape",
    "evaluate",
    "extract_features",
    "few_shot_indices",
    "get_protocol",
    "knn_predict",
    "linear_cka",
    "list_protocols",
    "mean_squared_error",
    "pretrain",
    "pretrain_drift",
    "pretrain_metadata",
    "register_protocol",
]
