"""The measured fast path: the cache (with a fake measurement), the overrides, the ISA restriction
of `auto`, and that channels_last trains the same network as NCHW."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ssdd_cli.errors import UsageError
from ssdd_cli.kit import fastpath
from ssdd_cli.kit import precision as prec
from ssdd_cli.kit.fastpath import FastPath, decide
from ssdd_cli.kit.precision import Precision, resolve_precision
from ssdd_cli.train.pretrain import fit
from ssdd_cli.train.recipe import PretrainConfig

CPU = torch.device("cpu")


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, list[int]]]:
    """`auto` with a fake measurement that picks channels_last, an empty cache of this test's
    own; the calls the measurement received."""
    monkeypatch.setenv("SSDD_CACHE", str(tmp_path))
    monkeypatch.delenv("SSDD_MEMORY_FORMAT", raising=False)
    monkeypatch.delenv("SSDD_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    calls: list[tuple[str, list[int]]] = []

    def fake(device: torch.device, precision: str, threads: list[int]) -> FastPath:
        calls.append((precision, threads))
        return FastPath(True, threads[0], "measured", {"nchw/2": 10.0, "channels_last/2": 7.0})

    monkeypatch.setattr(fastpath, "measure", fake)
    return calls


def test_auto_measures_once_then_reads_the_cache(measured: list[tuple[str, list[int]]]) -> None:
    said: list[str] = []
    first = decide(CPU, "fp32", say=said.append)
    assert first.channels_last and first.source == "measured" and len(measured) == 1
    assert "measuring" in said[0] and "channels_last" in said[1]
    cached = json.loads(fastpath.cache_file().read_text())
    assert len(cached) == 1 and "torch" in next(iter(cached)) and "fp32" in next(iter(cached))
    again = decide(CPU, "fp32", say=said.append)
    assert again.channels_last and again.source == "cached" and len(measured) == 1 and len(said) == 2
    decide(CPU, "bf16", say=said.append)  # another precision is another entry
    assert len(measured) == 2 and len(json.loads(fastpath.cache_file().read_text())) == 2
    decide(CPU, "fp32", remeasure=True, say=said.append)  # what `ssdd bench --probe` does
    assert len(measured) == 3


def test_the_kernels_restriction_is_part_of_the_key(measured: list[tuple[str, list[int]]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    decide(CPU, "fp32", say=lambda _: None)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    decide(CPU, "fp32", say=lambda _: None)
    assert len(measured) == 2


def test_resolve_precision_applies_the_decision(measured: list[tuple[str, list[int]]]) -> None:
    assert resolve_precision("fp32", CPU, say=lambda _: None) == Precision("fp32", "cpu", channels_last=True)


def test_overrides_skip_the_measurement(measured: list[tuple[str, list[int]]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("bf16", CPU, "nchw") == Precision("bf16", "cpu", channels_last=False)
    path = decide(CPU, "fp32", "channels_last")
    assert path.channels_last and path.source == "option"
    monkeypatch.setenv("SSDD_MEMORY_FORMAT", "nchw")
    path = decide(CPU, "fp32")
    assert not path.channels_last and path.source == "environment"
    assert decide(CPU, "fp32", "channels-last").channels_last  # the option beats the environment
    assert not measured


def test_bad_overrides_are_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSDD_MEMORY_FORMAT", "nhwc")
    with pytest.raises(UsageError, match=r"SSDD_MEMORY_FORMAT='nhwc' is not a memory format; choose one of"):
        decide(CPU, "fp32")
    with pytest.raises(UsageError, match=r"--memory-format 'x'"):
        decide(CPU, "fp32", "x")
    monkeypatch.setenv("SSDD_MEMORY_FORMAT", "auto")
    monkeypatch.setenv("SSDD_THREADS", "two")
    with pytest.raises(UsageError, match="SSDD_THREADS='two' is not a whole number"):
        decide(CPU, "fp32")


def test_a_user_thread_count_is_not_measured(measured: list[tuple[str, list[int]]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSDD_THREADS", "1")
    assert decide(CPU, "fp32", say=lambda _: None).threads == 1
    assert measured[0][1] == [1]


def test_a_damaged_cache_is_measured_again(measured: list[tuple[str, list[int]]]) -> None:
    fastpath.cache_file().parent.mkdir(parents=True, exist_ok=True)
    fastpath.cache_file().write_text("{not json")
    assert decide(CPU, "fp32", say=lambda _: None).source == "measured"
    assert json.loads(fastpath.cache_file().read_text())


def test_the_real_measurement_is_bounded_and_names_every_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "STEP_SHAPE", (8, 3, 8))
    monkeypatch.setattr(fastpath, "MAX_ROUNDS", 3)
    before = torch.get_num_threads()
    path = fastpath.measure(CPU, "fp32", [1, before])
    assert set(path.timings or {}) == {"nchw/1", "channels_last/1", f"nchw/{before}", f"channels_last/{before}"}
    assert path.source == "measured" and torch.get_num_threads() == before


@pytest.mark.parametrize(("cap", "isa", "bf16"), [
    ("AVX512", None, True), ("AVX2", None, False), ("AVX512", "AVX2", False),
    ("AVX512", "AVX512_CORE", False), ("AVX512", "AVX512_CORE_BF16", True), ("AVX512", "ALL", True),
])
def test_auto_honours_a_restriction_of_the_kernels(monkeypatch: pytest.MonkeyPatch, cap: str, isa: str | None,
                                                   bf16: bool) -> None:
    monkeypatch.setattr(prec, "hardware_capabilities", lambda: {"amx": False, "avx512_bf16": True})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: cap)
    if isa is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert resolve_precision("auto", CPU).name == ("bf16" if bf16 else "fp32")


def test_channels_last_trains_the_same_network_as_nchw(one_thread: None) -> None:
    g = torch.Generator().manual_seed(0)
    images, targets = torch.randn(24, 3, 16, 16, generator=g), torch.randn(24, 8, generator=g)
    config = PretrainConfig(arch="convnet", arch_kwargs={"widths": (16, 32)}, epochs=3, batch_size=8)
    losses = []
    for channels_last in (False, True):
        network, loss = fit(images, targets, None, config, in_channels=3, image_size=16, device=CPU,
                            precision=Precision("fp32", "cpu", channels_last=channels_last))
        losses.append(loss)
        out = network(images[:4])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=1e-6)
    assert out.shape == (4, 8)


def test_the_cache_file_follows_ssdd_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSDD_CACHE", str(tmp_path))
    assert fastpath.cache_file() == tmp_path / "fastpath.json"


def test_instance_norm_networks_keep_nchw() -> None:
    from ssdd_cli.models import create_backbone

    cl = Precision("bf16", "cpu", channels_last=True)
    assert cl.suited(create_backbone("convnet", 1, 28, widths=(8, 8, 8), norm="in")).channels_last is False
    assert cl.suited(create_backbone("convnet", 1, 28, widths=(8, 8, 8), norm="bn")) is cl
    assert Precision("fp32", "cpu").suited(create_backbone("convnet", 1, 28, norm="in")).channels_last is False


@pytest.fixture
def restored_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("restored_threads")
def test_the_key_does_not_move_with_the_thread_count_it_sets(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    """The decision sets another thread count than the current one; resolving again (in this
    process, and in a fresh one that reads the cache) finds it instead of measuring again."""
    monkeypatch.setenv("SSDD_CACHE", str(tmp_path))
    for name in ("SSDD_MEMORY_FORMAT", "SSDD_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(fastpath, "_DECIDED", {})
    torch.set_num_threads(3)  # a count no 2-core candidate list holds: the decision changes it
    calls: list[list[int]] = []

    def fake(device: torch.device, precision: str, threads: list[int]) -> FastPath:
        calls.append(threads)
        return FastPath(True, next(n for n in threads if n != torch.get_num_threads()), "measured")

    monkeypatch.setattr(fastpath, "measure", fake)
    first = resolve_precision("fp32", CPU)
    chosen = torch.get_num_threads()
    assert chosen != 3 and first.channels_last
    assert resolve_precision("fp32", CPU) == first and len(calls) == 1
    monkeypatch.setattr(fastpath, "_DECIDED", {})  # another process: only the cache file
    assert decide(CPU, "fp32").source == "cached" and len(calls) == 1
    assert torch.get_num_threads() == chosen


def _cache_with(entry: object, key: str | None = None) -> None:
    key = key or fastpath.machine_key(CPU, "fp32", fastpath.thread_candidates())
    fastpath.cache_file().parent.mkdir(parents=True, exist_ok=True)
    fastpath.cache_file().write_text(json.dumps({key: entry}))


BAD_ENTRIES = [
    {"channels_last": True, "threads": "x"}, {"channels_last": True, "threads": None},
    {"channels_last": "false", "threads": 1}, {"channels_last": 1, "threads": 1},
    {"channels_last": None, "threads": 1}, {"channels_last": True, "threads": 0},
    {"channels_last": True, "threads": -1}, {"channels_last": True, "threads": 10**30},
    {"channels_last": True, "threads": 2.5}, {"channels_last": True, "threads": 1.0},
    {"channels_last": True, "threads": True}, {"channels_last": True, "threads": 4097},
    {"channels_last": True, "threads": [1]}, {"channels_last": True}, {"threads": 1}, {},
    [True, 1], "channels_last", None, 1, {"channels_last": True, "threads": "1"},
]


@pytest.mark.parametrize("entry", BAD_ENTRIES, ids=[json.dumps(e)[:40] for e in BAD_ENTRIES])
def test_an_invalid_cache_entry_counts_as_absent(measured: list[tuple[str, list[int]]], entry: object) -> None:
    if isinstance(entry, dict) and type(entry.get("threads")) is int and entry["threads"] == 1:
        entry = {**entry, "threads": fastpath.thread_candidates()[0]}  # valid threads, bad rest
    _cache_with(entry)
    path = decide(CPU, "fp32", say=lambda _: None)
    assert path.source == "measured" and len(measured) == 1


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "null", "3", '"x"', '{"a": ', "\x00\xff", ""])
def test_a_damaged_cache_file_counts_as_empty(measured: list[tuple[str, list[int]]], text: str) -> None:
    fastpath.cache_file().parent.mkdir(parents=True, exist_ok=True)
    fastpath.cache_file().write_text(text)
    assert decide(CPU, "fp32", say=lambda _: None).source == "measured"
    assert json.loads(fastpath.cache_file().read_text())  # rewritten


def test_a_valid_entry_is_read_with_its_timings_checked(measured: list[tuple[str, list[int]]]) -> None:
    n = fastpath.thread_candidates()[-1]
    _cache_with({"channels_last": True, "threads": n, "timings": {"nchw/1": "slow"}})
    path = decide(CPU, "fp32")
    assert (path.source, path.channels_last, path.threads, path.timings) == ("cached", True, n, None)
    assert not measured
