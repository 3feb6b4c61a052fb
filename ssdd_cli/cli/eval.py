"""`ssdd eval`: Evaluate a backbone on a target dataset with one or more protocols.

`classify` (the supervised metric) trains fresh networks on a labelled artifact's images, or on
the target's whole training split (`full`), and scores their predictions; every other protocol
probes a backbone. Never trains a teacher. Protocols that compare with one (`align`) and the
`teacher` backbone use
`--teacher FILE`, or else the teacher recorded in the backbone's provenance (the sha256 of the
teacher its artifact was distilled with, `ssdd.teacher_sha256`), found in the teacher cache;
the command says which it uses, and refuses with what to do when it has neither.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ssdd_cli.api import load_artifact
from ssdd_cli.cli._archs import ArchName
from ssdd_cli.cli._common import console, notice, set_output
from ssdd_cli.cli._options import (
    DataRoot,
    Device,
    Download,
    LogFormat,
    MemoryFormat,
    Precision,
    Quiet,
    choice,
    complete_sources,
    writable,
)
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.cli._record import run_record
from ssdd_cli.data import load_source, normalize, source_preset
from ssdd_cli.device import resolve_device
from ssdd_cli.errors import DataError, UsageError
from ssdd_cli.io import atomic_write_bytes
from ssdd_cli.kit.precision import resolve_precision
from ssdd_cli.models import Backbone, load_backbone
from ssdd_cli.teacher import default_cache_root, find_cached_teacher, load_teacher
from ssdd_cli.train.batchnorm import BATCHNORM_RULES, DEFAULT_BATCHNORM
from ssdd_cli.train.classify import classify
from ssdd_cli.train.evaluate import EvalReport, evaluate, prepare
from ssdd_cli.train.linear import LinearProbeConfig
from ssdd_cli.train.pretrain import build_backbone
from ssdd_cli.train.protocols import (
    LABELLED_SET,
    ClassifyConfig,
    FinetuneConfig,
    get_protocol,
    list_protocols,
)
from ssdd_cli.train.recipe import PretrainConfig

if TYPE_CHECKING:
    BatchNormRule = str
else:
    BatchNormRule = choice(BATCHNORM_RULES)

Opt = typer.Option


def protocol_list(text: str) -> list[str]:
    """`linear,knn,align` -> ["linear", "knn", "align"], each a known protocol, no repeats;
    `classify` only alone (it trains on an artifact, the others probe a backbone)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise typer.BadParameter("give at least one protocol.")
    for name in names:
        if name not in list_protocols():
            raise typer.BadParameter(f"{name!r} is not one of {', '.join(map(repr, list_protocols()))}.")
    if len(set(names)) < len(names):
        raise typer.BadParameter("a protocol is named twice.")
    on_sets = [n for n in names if get_protocol(n).input == LABELLED_SET]
    if on_sets and len(names) > 1:
        raise typer.BadParameter(f"{on_sets[0]} trains on an artifact and the others probe a backbone; run "
                                 "them in two `ssdd eval` calls.")
    return names


def checked_protocols(text: str) -> str:
    """Option callback: refuse a bad `--protocol` list while parsing (so Typer names the flag)."""
    protocol_list(text)
    return text


def complete_protocols(incomplete: str) -> list[str]:
    """Complete the last name of a comma-separated protocol list."""
    head, _, last = incomplete.rpartition(",")
    prefix = f"{head}," if head else ""
    return [prefix + p for p in list_protocols() if p.startswith(last)]


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def command(
        backbone: Annotated[str, typer.Argument(help="A backbone file, `random` (an untrained --arch, "
                                                "initialised with seed 0: the lower reference) or "
                                                "`teacher` (the --teacher file: the upper reference); "
                                                "for classify, a labelled artifact (.ssdd) or `full` "
                                                "(the target's whole training split).")],
        target: Annotated[str | None, Opt(help="Target source to evaluate on (see `ssdd datasets`; "
                                          "classify: default the artifact's source).",
                                          autocompletion=complete_sources)] = None,
        protocol: Annotated[str, Opt(help=f"Protocols, comma-separated: {', '.join(list_protocols())} "
                                     "(alone).", callback=checked_protocols,
                                     autocompletion=complete_protocols)] = "linear",
        shots: Annotated[int | None, Opt(min=1, help="Few-shot: k labelled images per class (for the "
                                         "protocols that train on labels; align has none).")] = None,
        seeds: Annotated[int, Opt(min=1, help="Runs to average (mean ± std).")] = 1,
        arch: Annotated[ArchName, Opt(help="Architecture of `random`.")] = "convnet",
        teacher: Annotated[Path | None, Opt(exists=True, dir_okay=False, help="Teacher file for align and "
                                            "`teacher` (default: the one recorded in the backbone's "
                                            "provenance, from the teacher cache).")] = None,
        resolution: Annotated[int | None, Opt(min=1, help="Load the target at this size (default: the "
                                              "backbone's).")] = None,
        linear_epochs: Annotated[int, Opt(min=1, help="Epochs of the linear head.")] = 100,
        standardize: Annotated[bool, Opt(help="Linear: standardise the features first (a departure; the "
                                         "papers probe raw features).")] = False,
        finetune_steps: Annotated[int, Opt(min=1, help="SGD steps of fine-tuning.")] = 100,
        classify_epochs: Annotated[int, Opt(min=1, help="classify: epochs of each network (the DM "
                                            "papers' 1,000; DC's code 300).")] = ClassifyConfig.epochs,
        precision: Precision = "fp32",
        memory_format: MemoryFormat = "auto",
        batchnorm: Annotated[BatchNormRule, Opt(help="BatchNorm statistics probed: recomputed on the "
                                                "target's training images, for every backbone alike "
                                                "(default), or those the file stores.")] = DEFAULT_BATCHNORM,
        data_root: DataRoot = None,
        download: Download = False,
        device: Device = "auto",
        json_out: Annotated[Path | None, Opt("--json", callback=writable, dir_okay=False,
                                             help="Also write the results as JSON here.")] = None,
        quiet: Quiet = False,
        log_format: LogFormat = "text",
    ) -> None:
        """Evaluate a backbone on a target dataset with one or more protocols.

        linear, finetune, knn (labels) and align (CKA and MSE against a teacher, label-free) probe a
        backbone; classify trains fresh networks on a labelled artifact and scores their predictions.
        """
        set_output(quiet, log_format)
        names = protocol_list(protocol)
        if get_protocol(names[0]).input == LABELLED_SET:
            if shots is not None:
                raise UsageError(f"shots do not apply to {names[0]}, which trains on every image of the "
                                 "artifact; drop them.", option="shots")
            given: dict[str, Any] = {"artifact": backbone, "target": target, "protocol": names,
                                     "seeds": seeds, "classify_epochs": classify_epochs,
                                     "precision": precision}
            _classify(backbone, target, ClassifyConfig(epochs=classify_epochs), seeds=seeds,
                      precision=precision, memory_format=memory_format, data_root=data_root,
                      download=download, device=device,
                      json_out=json_out, given=given)
            return
        if target is None:
            raise UsageError("give the target to evaluate on with --target (see `ssdd datasets`).",
                             option="target")
        specs = [get_protocol(n) for n in names]
        if shots is not None and not any(s.uses_shots for s in specs):
            raise UsageError(f"shots do not apply to {', '.join(names)}; drop them.", option="shots")
        dev = resolve_device(device)
        reference = backbone in ("random", "teacher")
        net, meta = (None, {}) if reference else load_backbone(backbone, map_location=dev)
        ref: Backbone | None = None
        ref_info: dict[str, str] | None = None
        if backbone == "teacher" or any(s.needs_teacher for s in specs):
            ref_path, how = _teacher_file(backbone, meta, teacher)
            ref, ref_meta = load_teacher(ref_path, map_location=dev)
            ref_info = {"path": str(ref_path), "sha256": ref_meta.get("ssdd.sha256", ""), "chosen": how}
            recorded = meta.get("ssdd.teacher_sha256")
            if recorded and recorded != ref_info["sha256"]:
                how += f"; the backbone's artifact was distilled with another teacher, {recorded[:12]}"
            notice(f"teacher: {ref_path} ({how})")
        if backbone == "teacher":
            net = ref
        size = resolution or (net.image_size if net is not None else None) or source_preset(target).resolution
        data = load_source(target, data_root=data_root, download=download, resolution=size)
        if net is None:  # `random`: built for the target's shape
            net = build_backbone(PretrainConfig.from_preset(source_preset(target), arch=arch),
                                 in_channels=data.channels, image_size=data.resolution, device=dev)
        configs = {"linear": LinearProbeConfig(epochs=linear_epochs, standardize=standardize),
                   "finetune": FinetuneConfig(steps=finetune_steps)}
        given = {"backbone": backbone, "target": target, "protocol": names, "shots": shots, "seeds": seeds,
                 "arch": arch, "teacher": teacher, "resolution": size, "linear_epochs": linear_epochs,
                 "standardize": standardize, "finetune_steps": finetune_steps, "batchnorm": batchnorm}
        reports: list[EvalReport] = []
        with _maybe_record(json_out, given, str(dev)) as record, progress_callback(record) as callback:
            probed = prepare(net, data, device=dev, teacher=ref, batchnorm=batchnorm)
            for spec in specs:
                reports.append(evaluate(probed, data, spec.name, seeds=seeds,
                                        shots=shots if spec.uses_shots else None, device=dev,
                                        callback=callback, config=configs.get(spec.name)))
            doc = {"backbone": backbone, "arch": getattr(net, "arch", arch), "target": target,
                   "teacher": ref_info, "results": [r.to_dict() for r in reports]}
            if record is not None:
                record.finish(config=doc["results"], output=str(json_out))
        console.print(_table(reports, backbone))
        if json_out is not None:
            atomic_write_bytes(json_out, (json.dumps(doc, indent=2) + "\n").encode())


def _classify(artifact: str, target: str | None, config: ClassifyConfig, *, seeds: int, precision: str,
              memory_format: str, data_root: Path | None, download: bool, device: str, json_out: Path | None,
              given: dict[str, Any]) -> None:
    """`ssdd eval ARTIFACT --protocol classify` (or `full`): networks trained on its labels."""
    dev = resolve_device(device)
    if artifact == "full":
        if target is None:
            raise UsageError("classify full trains on a target's whole training split; name it with "
                             "--target.", option="target")
        data = load_source(target, data_root=data_root, download=download)
        mean, std, labels = data.mean, data.std, data.train_labels
        images, what = normalize(data.train, mean, std), f"{target}'s train split"
    else:
        if artifact in ("random", "teacher"):
            raise UsageError(f"classify trains on a labelled artifact, not on `{artifact}`; give a .ssdd "
                             "file or `full`.")
        bundle = load_artifact(artifact)
        man = bundle.manifest
        what = f"artifact {artifact}"
        if man.raw is None or not man.raw.labels:
            raise DataError(f"{what} stores no class labels (a {man.method} artifact), so classify cannot "
                            "train on it; classify a DM-family artifact, or a random or kmeans selection "
                            "of a labelled source.")
        data = load_source(target or man.source.name, data_root=data_root, download=download,
                           resolution=bundle.bundle.tensors["images"].shape[-1])
        ds = bundle.materialize()
        images, labels, mean, std = ds.images, ds.labels, ds.mean, ds.std
    passes = resolve_precision(precision, dev, memory_format, say=notice)
    with _maybe_record(json_out, given, str(dev)) as record, progress_callback(record) as callback:
        report = classify(images, labels, data, what=what, mean=mean, std=std, config=config, seeds=seeds,
                          device=dev, precision=passes, callback=callback)
        doc = {"artifact": artifact, "target": data.name, "m": int(images.shape[0]),
               "results": [report.to_dict()]}
        if record is not None:
            record.finish(config=doc["results"], output=str(json_out))
    console.print(_table([report], artifact))
    if json_out is not None:
        atomic_write_bytes(json_out, (json.dumps(doc, indent=2) + "\n").encode())


def _maybe_record(output: Path | None, given: dict[str, Any], device: str) -> Any:
    """The run record beside `--json`'s file; without one, no record (there is no output)."""
    from contextlib import nullcontext

    return run_record(output, "eval", given, device=device) if output is not None else nullcontext(None)


def _teacher_file(backbone: str, meta: dict[str, str], given: Path | None) -> tuple[Path, str]:
    """The teacher to compare with, and how it was chosen (module docstring)."""
    recorded = meta.get("ssdd.teacher_sha256")
    if given is not None:
        return given, "given with --teacher"
    if backbone in ("random", "teacher") or not recorded:
        what = "the teacher backbone" if backbone == "teacher" else "comparing with a teacher"
        why = "" if backbone in ("random", "teacher") else ", and the backbone records no teacher"
        raise UsageError(f"{what} needs a teacher file{why}; give it with --teacher (ssdd eval never "
                         "trains one: `ssdd teacher` does).", option="teacher")
    found = find_cached_teacher(recorded)
    if found is None:
        raise DataError(f"the backbone's artifact was distilled with teacher {recorded[:12]}…, which is not "
                        f"in the teacher cache ({default_cache_root()}); pass that teacher with --teacher.",
                        option="teacher")
    return found, f"sha256 {recorded[:12]}, the teacher the backbone's artifact was distilled with"


def _table(reports: list[EvalReport], backbone: str) -> Table:
    """One row per protocol and metric; one seed shows the value alone (no `± 0`)."""
    first = reports[0]
    seeds = len(first.seeds)
    seconds = sum(r.seconds for r in reports)
    table = Table(title=f"{backbone} on {first.target}", caption=f"{seeds} seed(s), {seconds:.1f} s",
                  caption_justify="left")
    for column in ("protocol", "metric", "mean ± std" if seeds > 1 else "value", "per seed"):
        table.add_column(column)
    for report in reports:
        shots = f" ({report.shots}-shot)" if report.shots else ""
        for m in report.metrics:
            value = f"{m.mean:.4f} ± {m.std:.4f}" if seeds > 1 else f"{m.mean:.4f}"
            table.add_row(report.protocol + shots, m.name, value,
                          ", ".join(f"{v:.4f}" for v in m.values) if seeds > 1 else "")
    return table
