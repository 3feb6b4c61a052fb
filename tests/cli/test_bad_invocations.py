"""The table of bad invocations (issue 12): each one exits with its code (2 a bad option, 1 a
problem with data or files, 130 an interrupt), says one sentence on stderr and nothing on stdout,
shows no traceback, and leaves no file behind (in its folder or the caches).

A line that starts with a flag (`error: --teacher: ...`) names a flag of the command it came from.
Interrupts, including one while the command is still importing, are at the end of the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdd_cli.cli import distill as distill_cli
from ssdd_cli.cli import eval as eval_cli
from ssdd_cli.cli.main import app
from ssdd_cli.models import create_backbone, save_backbone
from ssdd_cli.progress import Callback, ProgressEvent
from tests.distill.helpers import write_tiny_teacher

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "formats" / "golden" / "v1-ssdd.ssdd"
runner = CliRunner()

# A distillation small enough to start in a moment; the refusals below happen before it would.
DISTILL = ["distill", "--source", "digits", "--teacher", "{teacher}", "-o", "{tmp}/x.ssdd", "--budget", "10",
           "--U", "8", "--V", "8", "--steps", "4", "--batch-size", "32", "--pool-size", "1", "--pool-steps", "2",
           "--device", "cpu"]
EVAL = ["eval", "random", "--target", "digits", "--device", "cpu"]

# (id, argv with {tmp} {teacher} {golden} {stranger} placeholders, exit code, a fragment of the line)
CASES: list[tuple[str, list[str], int, str]] = [
    # 0 is 0: refused where it means nothing, never read as "the preset's value"
    ("budget --budget 0", ["budget", "--source", "digits", "--budget", "0"], 2, "'--budget'"),
    ("budget --U 0 --V 0", ["budget", "--source", "digits", "--U", "0", "--V", "0"], 2, "'--U'"),
    ("budget --scale 0", ["budget", "--source", "digits", "--scale", "0"], 2, "'--scale'"),
    ("budget --hidden -1", ["budget", "--source", "digits", "--hidden", "-1"], 2, "'--hidden'"),
    ("budget --feature-dim 0", ["budget", "--source", "digits", "--feature-dim", "0"], 2, "'--feature-dim'"),
    ("budget --feature-dim without teacher", ["budget", "--method", "dm", "--source", "digits",
                                              "--feature-dim", "64"], 2, "--feature-dim: method 'dm' has no teacher"),
    ("teacher --lr 0", ["teacher", "--source", "digits", "--lr", "0", "-o", "{tmp}/t.safetensors"], 2,
     "'--lr': 0.0 is not greater than 0"),
    ("teacher --epochs 0", ["teacher", "--source", "digits", "--epochs", "0", "-o", "{tmp}/t.safetensors"], 2,
     "'--epochs'"),
    ("eval --resolution 0", [*EVAL, "--resolution", "0"], 2, "'--resolution'"),
    ("eval --linear-epochs 0", [*EVAL, "--linear-epochs", "0"], 2, "'--linear-epochs'"),
    ("eval --seeds 0", [*EVAL, "--seeds", "0"], 2, "'--seeds'"),
    ("distill --steps -5", [*DISTILL, "--steps", "-5"], 2, "'--steps'"),
    ("distill --batch-size -64", [*DISTILL, "--batch-size", "-64"], 2, "'--batch-size'"),
    ("distill --pool-size -1", [*DISTILL, "--pool-size", "-1"], 2, "'--pool-size'"),
    ("distill --lr -1", [*DISTILL, "--lr", "-1"], 2, "'--lr'"),
    ("distill --seed -1", [*DISTILL, "--seed", "-1"], 2, "'--seed'"),
    ("pretrain --lr 0", ["pretrain", "{golden}", "--lr", "0", "-o", "{tmp}/b.safetensors"], 2, "'--lr'"),
    # choices
    ("distill --method nope", [*DISTILL, "--method", "nope"], 2, "'nope' is not one of"),
    ("distill --aug mixup", [*DISTILL, "--aug", "mixup"], 2, "'mixup' is not one of"),
    ("budget --preset nope", ["budget", "--preset", "nope"], 2, "'nope' is not one of"),
    ("teacher --arch nope", ["teacher", "--source", "digits", "--arch", "nope", "-o", "{tmp}/t.safetensors"], 2,
     "'nope' is not one of"),
    ("eval --protocol svm", [*EVAL, "--protocol", "svm"], 2, "'svm' is not one of"),
    ("eval --protocol twice", [*EVAL, "--protocol", "knn,knn"], 2, "named twice"),
    ("bench --training, two precisions", ["bench", "--training", "--precision", "fp32", "--precision", "bf16",
                                          "--device", "cpu"], 2, "--precision: ssdd bench --training times one"),
    ("distill --source nope", [*DISTILL[:2], "nope", *DISTILL[3:]], 2, "unknown source"),
    ("distill --device cuda:7", [*DISTILL, "--device", "cuda:7"], 2, "--device: "),
    ("an unknown command", ["distil"], 2, "No such command"),
    ("a missing option", ["distill", "-o", "{tmp}/x.ssdd"], 2, "Missing option '--source'"),
    # combinations the library refuses before any work
    ("budget: impossible budget", ["budget", "--source", "digits", "--budget", "1"], 2, "more than N = 1 allows"),
    ("distill: the same impossible budget", [*DISTILL, "--budget", "1"], 2, "more than N = 1 allows"),
    ("distill: a setting the method lacks", [*DISTILL, "--method", "random"], 2,
     "--U: method 'random' has no setting 'U'"),
    ("eval --shots with align only", [*EVAL, "--protocol", "align", "--shots", "2", "--teacher", "{teacher}"], 2,
     "--shots: shots do not apply"),
    # outputs that cannot be written: refused while parsing, before any work
    ("distill -o /proc", [*DISTILL[:5], "-o", "/proc/z.ssdd", *DISTILL[7:]], 2, "cannot write /proc/z.ssdd"),
    ("pretrain -o /proc", ["pretrain", "{golden}", "-o", "/proc/z.safetensors"], 2, "cannot write /proc"),
    ("teacher -o /proc", ["teacher", "--source", "digits", "-o", "/proc/z.safetensors"], 2, "cannot write /proc"),
    ("eval --json /proc", [*EVAL, "--json", "/proc/x.json"], 2, "cannot write /proc/x.json"),
    ("distill -o in a missing folder", [*DISTILL[:5], "-o", "{tmp}/no/x.ssdd", *DISTILL[7:]], 2,
     "folder {tmp}/no does not exist"),
    ("distill -o a folder", [*DISTILL[:5], "-o", "{tmp}", *DISTILL[7:]], 2, "is a directory"),
    # inputs that must exist
    ("info on a folder", ["info", "{tmp}"], 2, "is a directory"),
    ("info on a missing file", ["info", "{tmp}/nope.ssdd"], 2, "does not exist"),
    ("pretrain a missing artifact", ["pretrain", "{tmp}/nope.ssdd", "-o", "{tmp}/b.safetensors"], 2,
     "does not exist"),
    ("distill --teacher missing", [*DISTILL[:3], "--teacher", "{tmp}/nope.safetensors", *DISTILL[5:]], 2,
     "does not exist"),
    ("import-teacher a missing checkpoint", ["import-teacher", "{tmp}/nope.pth", "--source", "digits", "-o",
                                             "{tmp}/t.safetensors"], 2, "does not exist"),
    # files that are not what they should be
    ("distill --teacher an artifact", [*DISTILL[:3], "--teacher", "{golden}", *DISTILL[5:]], 1,
     "is a .ssdd artifact, not a network"),
    ("eval an artifact as backbone", ["eval", "{golden}", "--target", "digits"], 1,
     "is a .ssdd artifact, not a network"),
    ("eval --teacher an artifact", [*EVAL, "--protocol", "align", "--teacher", "{golden}"], 1,
     "is a .ssdd artifact, not a network"),
    ("info on a non-artifact", ["info", "{teacher}"], 1, "not a .ssdd artifact"),
    # missing data: the flag that fetches it is named, on every command that loads a source
    ("distill: CIFAR missing", [*DISTILL[:2], "cifar10", "-o", "{tmp}/c.ssdd", "--data-root", "{tmp}/empty"], 1,
     "--download: cifar10 not found"),
    ("teacher: CIFAR missing", ["teacher", "--source", "cifar10", "-o", "{tmp}/t.safetensors", "--data-root",
                                "{tmp}/empty"], 1, "--download: cifar10 not found"),
    ("eval: CIFAR missing", ["eval", "random", "--target", "cifar10", "--data-root", "{tmp}/empty"], 1,
     "--download: cifar10 not found"),
    # eval never trains a teacher
    ("eval teacher without --teacher", ["eval", "teacher", "--target", "digits"], 2,
     "--teacher: the teacher backbone needs a teacher file"),
    ("eval align without a teacher", [*EVAL, "--protocol", "linear,align"], 2, "--teacher: comparing with a teacher"),
    ("eval align, recorded teacher not cached", ["eval", "{stranger}", "--target", "digits", "--protocol", "align"], 1,
     "--teacher: the backbone's artifact was distilled with teacher abababababab"),
    # --resume with other options or another seed (a checkpoint of a run with --seed 0 exists)
    ("distill --resume --seed 1", [*DISTILL[:5], "-o", "{resumable}", *DISTILL[7:], "--resume", "--seed", "1"], 1,
     "--seed: checkpoint"),
    ("distill --resume --pool-size 2", [*DISTILL[:5], "-o", "{resumable}", *DISTILL[7:], "--resume", "--pool-size",
                                        "2"], 1, "--pool-size: checkpoint"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("inputs")
    teacher = write_tiny_teacher(folder / "teacher.safetensors")
    stranger = folder / "stranger.safetensors"  # a backbone whose artifact's teacher is nowhere
    save_backbone(stranger, create_backbone("convnet", 1, 16, widths=[4, 4]), {"ssdd.teacher_sha256": "ab" * 32})
    resumable = folder / "resumable" / "d.ssdd"
    resumable.parent.mkdir()
    args = [a.format(teacher=teacher, tmp=folder) for a in DISTILL]
    args[6] = str(resumable)

    @contextmanager
    def killed(record: object = None) -> Iterator[Callback]:
        def callback(event: ProgressEvent) -> None:
            if event.stage == "distill" and event.step == 2:
                raise KeyboardInterrupt

        yield callback

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distill_cli, "progress_callback", killed)
        assert runner.invoke(app, args).exit_code == 130
    assert resumable.with_name("d.ssdd.ckpt").is_file()
    return {"teacher": str(teacher), "golden": str(GOLDEN), "stranger": str(stranger), "resumable": str(resumable)}


def files_under(*roots: Path) -> set[Path]:
    return {p for root in roots if root.exists() for p in root.rglob("*")}


def check_one_line(result: object, code: int, fragment: str, command: str | None) -> str:
    """The exit code, nothing on stdout, one `error:` line on stderr holding `fragment`, no traceback;
    a flag the line starts with belongs to `command`. Returns the line."""
    err = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == code, err  # type: ignore[attr-defined]
    assert result.stdout == "", result.stdout  # type: ignore[attr-defined]
    assert "Traceback" not in err
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception  # type: ignore[attr-defined]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]
    flag = re.match(r"error: (--[\w-]+): ", lines[0])
    if flag and command:
        loaded = app_command(command)
        assert any(flag.group(1) in p.opts for p in loaded.params), f"{command} has no {flag.group(1)}"
    return lines[0]


def app_command(name: str) -> object:
    from typer.main import get_command

    return get_command(app).load(name)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("argv", "code", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_invocation(argv: list[str], code: int, fragment: str, inputs: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    resumable = Path(inputs["resumable"]).parent
    cache = Path(os.environ["SSDD_CACHE"])
    values = {**inputs, "tmp": str(tmp_path)}
    args = [a.format(**values) for a in argv]
    before = files_under(tmp_path, cache, resumable, Path(inputs["teacher"]).parent)
    result = runner.invoke(app, args)
    check_one_line(result, code, fragment.format(**values), argv[0] if argv[0] != "distil" else None)
    after = files_under(tmp_path, cache, resumable, Path(inputs["teacher"]).parent)
    assert after == before, f"left behind: {sorted(map(str, after - before))}"


def test_budget_defaults_d_y_to_the_sources_teacher() -> None:
    # the digits teacher is 128-d; 512 (the paper's ResNet-18) made N = 20 impossible on digits
    result = runner.invoke(app, ["budget", "--source", "digits", "--budget", "20", "--json"])
    assert result.exit_code == 0, result.output
    assert '"feature_dim": 128' in result.output


def test_a_teacher_folder_that_cannot_hold_its_feature_cache(tmp_path: Path, one_thread: None) -> None:
    # a file where the cache folder `teacher.features/` would go: the features are used uncached
    teacher = write_tiny_teacher(tmp_path / "teacher.safetensors")
    (tmp_path / "teacher.features").write_text("not a folder")
    args = [a.format(teacher=teacher, tmp=tmp_path) for a in DISTILL]
    result = runner.invoke(app, [*args, "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.ssdd").is_file() and (tmp_path / "teacher.features").is_file()


# Interrupts: exit 130, one line, and --resume offered only by a command that has it.

def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def test_interrupting_eval_offers_no_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_cli, "evaluate", _interrupt)
    line = check_one_line(runner.invoke(app, [*EVAL, "--protocol", "knn"]), 130, "interrupted", "eval")
    assert "--resume" not in line


def test_interrupting_distill_offers_resume(monkeypatch: pytest.MonkeyPatch, inputs: dict[str, str],
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(distill_cli, "run_distill", _interrupt)
    args = [a.format(teacher=inputs["teacher"], tmp=tmp_path) for a in DISTILL]
    line = check_one_line(runner.invoke(app, args), 130, "interrupted", "distill")
    assert "rerun the same command with --resume" in line


# A real SIGINT, sent by the process to itself when it starts importing `module`.
INTERRUPTED_IMPORT = """
import os, signal, sys
# Python's own handler, as at a terminal (a job started in the background inherits SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["ssdd", *{args!r}]
from ssdd_cli.cli import main
main()
"""


@pytest.mark.parametrize(("module", "args"), [("typer", ["--help"]), ("torch", ["distill", "--help"])])
def test_sigint_while_importing(module: str, args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT.format(module=module, args=args)],
                          capture_output=True, text=True, env=env, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 130, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: interrupted") and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert "--resume" not in lines[0]  # nothing had started, so there is nothing to resume
