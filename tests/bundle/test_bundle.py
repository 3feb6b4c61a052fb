"""The .ssdd v1 reader/writer: round trip, golden files, schema drift, and every bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from ssdd_cli.bundle import (
    BundleError,
    ManifestError,
    MissingManifestError,
    NonFiniteError,
    NotSafetensorsError,
    TensorMismatchError,
    TruncatedFileError,
    UnsupportedVersionError,
    load_bundle,
    read_manifest,
    save_bundle,
)
from ssdd_cli.bundle.manifest import MANIFEST_KEY
from ssdd_cli.bundle.schema import render

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "formats" / "golden"

import sys  # noqa: E402

sys.path.insert(0, str(GOLDEN))
from generate import parameterized, raw, tensors_for  # noqa: E402


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "a.ssdd"
    save_bundle(path, parameterized(), tensors_for(parameterized(), 0))
    return path


def _write_raw(path: Path, header: dict, data: bytes = b"") -> None:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


def test_round_trip_identical(tmp_path: Path) -> None:
    for manifest, seed in ((parameterized(), 0), (raw(), 1)):
        tensors = tensors_for(manifest, seed)
        path = save_bundle(tmp_path / f"{manifest.method}.ssdd", manifest, tensors)
        bundle = load_bundle(path)
        assert bundle.manifest == manifest
        assert bundle.tensors.keys() == tensors.keys()
        for name, t in tensors.items():
            assert torch.equal(bundle.tensors[name], t)
        assert read_manifest(path) == manifest


def test_golden_v1_files_still_load() -> None:
    b = load_bundle(GOLDEN / "v1-ssdd.ssdd")
    assert b.manifest.format_version == "1.0" and b.manifest.method == "ssdd"
    assert b.manifest.m == 5 and b.manifest.views == ["rot90", "rot180", "rot270"]
    assert b.tensors["image.bases"].shape == (6, 1, 4, 4)
    assert b.tensors["repr.coeffs"].shape == (5, 4)
    # Values measured when the golden file was written (formats/golden/generate.py, seed 0).
    assert float(b.tensors["image.bases"].double().sum()) == pytest.approx(7.652709, abs=1e-5)
    assert float(b.tensors["repr.coeffs"].double().sum()) == pytest.approx(-2.363823, abs=1e-5)
    assert b.manifest.budget.floats_used == sum(t.numel() for t in b.tensors.values())
    assert b.manifest.distill is not None and b.manifest.distill.pool_size == 2  # a 1.0 KRR field
    r = load_bundle(GOLDEN / "v1-raw.ssdd")
    assert r.manifest.raw is not None and r.manifest.raw.target_dim == 8
    assert float(r.tensors["images"].double().sum()) == pytest.approx(3.530016, abs=1e-5)


def test_golden_v1_1_file_loads_with_its_settings() -> None:
    b = load_bundle(GOLDEN / "v1.1-ssdd.ssdd")
    assert b.manifest.format_version == "1.1" and b.manifest.distill is not None
    assert b.manifest.distill.settings["krr.pool.arch_kwargs"] == {"widths": [8, 16]}
    assert b.manifest.distill.pool_size is None  # 1.1 writes the KRR settings only in `settings`
    # Values measured when the golden file was written (formats/golden/generate.py, seed 2).
    assert float(b.tensors["image.bases"].double().sum()) == pytest.approx(-0.667102, abs=1e-5)


def test_golden_v1_2_file_decodes_its_tiles() -> None:
    from ssdd_cli.artifact import materialize

    b = load_bundle(GOLDEN / "v1.2-labelled.ssdd")
    assert b.manifest.format_version == "1.2" and b.manifest.teacher is None
    assert b.manifest.raw is not None and (b.manifest.raw.m, b.manifest.raw.factor, b.manifest.raw.labels) == (4, 2, True)
    # Values measured when the golden file was written (formats/golden/generate.py, seed 3).
    assert float(b.tensors["images"].double().sum()) == pytest.approx(5.112879, abs=1e-5)
    ds = materialize(b)
    assert ds.images.shape == (16, 1, 8, 8) and ds.packed is not None and ds.labels is not None
    assert ds.labels.tolist() == b.tensors["labels"].tolist() * 4
    assert ds.views == ("tile-0-0", "tile-0-1", "tile-1-0", "tile-1-1")


def test_schema_file_matches_the_model() -> None:
    on_disk = (ROOT / "formats" / "ssdd-v1.schema.json").read_text()
    assert on_disk == render(), "formats/ssdd-v1.schema.json is stale: run `make schema`"


def test_truncated_file(artifact: Path) -> None:
    data = artifact.read_bytes()
    for cut in (len(data) - 10, 40):
        artifact.write_bytes(data[:cut])
        with pytest.raises(TruncatedFileError):
            load_bundle(artifact)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "junk.ssdd"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(NotSafetensorsError):
        load_bundle(path)
    path.write_bytes(b"abc")
    with pytest.raises(NotSafetensorsError):
        load_bundle(path)


def test_safetensors_without_manifest(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(MissingManifestError, match="not a .ssdd artifact"):
        load_bundle(path)


def _rewrite_manifest(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    b = load_bundle(path)
    doc = json.loads(b.manifest.model_dump_json())
    edit(doc)
    save_file(b.tensors, str(path), metadata={MANIFEST_KEY: json.dumps(doc)})


def test_future_major_version_is_refused(artifact: Path) -> None:
    _rewrite_manifest(artifact, lambda d: d.update(format_version="2.0"))
    with pytest.raises(UnsupportedVersionError, match="upgrade ssdd"):
        load_bundle(artifact)


def test_newer_minor_version_with_unknown_fields_is_read(artifact: Path) -> None:
    def edit(d: dict) -> None:
        d.update(format_version="1.7", shiny_new_field=1)
        d["source"]["new_source_field"] = "x"

    _rewrite_manifest(artifact, edit)
    assert load_bundle(artifact).manifest.method == "ssdd"


def test_unknown_field_in_same_version_is_refused(artifact: Path) -> None:
    _rewrite_manifest(artifact, lambda d: d.update(surprise=1))
    with pytest.raises(ManifestError):
        load_bundle(artifact)


def test_shape_disagreeing_with_manifest(artifact: Path) -> None:
    b = load_bundle(artifact)
    tensors = dict(b.tensors, **{"image.coeffs": torch.zeros(4, 6)})
    save_file(tensors, str(artifact), metadata={MANIFEST_KEY: b.manifest.model_dump_json()})
    with pytest.raises(TensorMismatchError, match="image.coeffs"):
        load_bundle(artifact)


def test_missing_and_extra_tensors(artifact: Path) -> None:
    b = load_bundle(artifact)
    tensors = {k: v for k, v in b.tensors.items() if k != "repr.bases"}
    tensors["bonus"] = torch.zeros(1)
    save_file(tensors, str(artifact), metadata={MANIFEST_KEY: b.manifest.model_dump_json()})
    with pytest.raises(TensorMismatchError, match="missing repr.bases; unexpected bonus"):
        load_bundle(artifact)


def test_nan_in_a_tensor(artifact: Path) -> None:
    b = load_bundle(artifact)
    bad = b.tensors["repr.bases"].clone()
    bad[0, 0] = float("nan")
    save_file(dict(b.tensors, **{"repr.bases": bad}), str(artifact),
              metadata={MANIFEST_KEY: b.manifest.model_dump_json()})
    with pytest.raises(NonFiniteError, match="repr.bases"):
        load_bundle(artifact)


def test_writer_refuses_inconsistent_tensors(tmp_path: Path) -> None:
    tensors = tensors_for(parameterized(), 0)
    tensors["image.bases"] = torch.zeros(1)
    with pytest.raises(TensorMismatchError):
        save_bundle(tmp_path / "x.ssdd", parameterized(), tensors)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_malformed_header_entries(tmp_path: Path) -> None:
    path = tmp_path / "m.ssdd"
    _write_raw(path, {"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(NotSafetensorsError):
        load_bundle(path)
    _write_raw(path, {"x": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(TensorMismatchError, match="F16"):
        load_bundle(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_bytes_raise_only_format_errors(artifact: Path, data: st.DataObject) -> None:
    original = artifact.read_bytes()
    blob = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(blob) - 1)))
        if kind == "flip" and blob:
            blob[pos] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del blob[pos : pos + data.draw(st.integers(1, 64))]
        else:
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    mutated = artifact.with_suffix(".mut")
    mutated.write_bytes(bytes(blob))
    try:
        load_bundle(mutated)
    except BundleError:
        pass
