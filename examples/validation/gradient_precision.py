"""Issue 33, hypothesis H8: is the outer gradient of a bf16 run the fp32 one, up to small noise?

Under `--precision auto` on a CPU with bf16 units the pool's and the teacher's network passes run
under bf16 autocast, and the outer gradient reaches the distilled tensors through those passes
and a nearly interpolating KRR solve (λ = 1e-6·tr K). If bf16 bent that gradient far from the
float32 one, the flat trained-network signal of issue 33's screens could be a precision artefact
(/work/shared/research/quality-hypotheses.md, H8). This script measures it at one state.

It builds the method's distillation exactly as `ssdd distill` does (the preset's defaults, the
given teacher, seed 0, the train split normalised on the device), trains the pool, advances the
run by K outer steps at the run's precision, and there computes the outer gradient (∂ loss / ∂
every learnable tensor of the distilled set) twice from the same generator state, so with the
same pool model, real batch and crop-flip draws: once with the network passes in bf16, once in
float32 (the run's memory format for both, so only the dtype differs). It prints, per draw and
tensor, the cosine of the two gradients and the ratio of their norms ‖g_bf16‖ / ‖g_fp32‖, then
the medians over the draws; and, as a floor, the cosine of two float32 recomputations (1 up to
nondeterministic summation order). The measurement restores the generator, so the state at the
next K is the state a plain `ssdd distill` run reaches.

Reading: a cosine near 1 and a ratio near 1 clear bf16; the research plan reruns seed 0 in fp32
(about 15 minutes) only if the overall cosine is below about 0.9.

    python examples/validation/gradient_precision.py --preset fashion-mnist --budget 10 \
        --teacher teacher.safetensors --steps-before 0,100 --repeats 5
    python examples/validation/gradient_precision.py --preset digits --budget 10 \
        --teacher digits-teacher.safetensors --steps-before 0,20 --repeats 3   # ~20 s on one core

Measured (Fashion-MNIST N = 10, seed 0, the teacher of issue 33's screen, Intel Xeon with AMX and
AVX512-BF16, one thread, channels_last, 5 draws): the overall cosine's median is 0.9998 at step 0
and 0.990 at step 100 for ssdd (its lowest tensor B^y: 0.982, norm ratio 0.97), 0.9992 at step 0
for krr-st; every norm ratio within 0.95-1.02; the float32 floor 1.00000000. bf16 is cleared.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from ssdd_cli.device import resolve_device
from ssdd_cli.distill.distillation import Distillation
from ssdd_cli.distill.objectives.krr import KRRObjective
from ssdd_cli.distill.run import DistillRequest, prepare_distill
from ssdd_cli.kit.precision import Precision, resolve_precision
from ssdd_cli.progress import silent

Gradient = dict[str, Tensor]  # parameter name -> ∂ loss / ∂ parameter
Comparison = dict[str, tuple[float, float]]  # tensor name (or "all") -> (cosine, norm ratio)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="fashion-mnist", help="source and preset (ssdd datasets)")
    parser.add_argument("--budget", type=int, default=10, help="N, images")
    parser.add_argument("--teacher", type=Path, required=True, help="teacher file (ssdd teacher)")
    parser.add_argument("--method", default="ssdd", choices=("ssdd", "krr-st"))
    parser.add_argument("--steps-before", default="0", help="comma-separated outer steps K to measure at")
    parser.add_argument("--repeats", type=int, default=5, help="draws (pool model, real batch) per state")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="auto", help="the run's precision, as ssdd distill's")
    parser.add_argument("--memory-format", default="auto", help="as ssdd distill's --memory-format")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def build_run(args: argparse.Namespace, precision: Precision) -> Distillation:
    """The distillation `ssdd distill` sets up for these arguments, before its loop
    (`distill.run.prepare_distill`; nothing is written, so the output path is never used)."""
    request = DistillRequest(source=args.preset, output=Path("unused.ssdd"), method=args.method,
                             budget=args.budget, seed=args.seed, device=resolve_device(args.device),
                             teacher=args.teacher, precision=precision)
    return prepare_distill(request).run


def objective_of(run: Distillation) -> KRRObjective:
    assert run.loop is not None and isinstance(run.loop.objective, KRRObjective)
    return run.loop.objective


@contextmanager
def passes_in(run: Distillation, precision: Precision) -> Iterator[None]:
    """Within the block the pool's and the teacher's passes run in `precision`'s dtype (the teacher
    computes the crop-flip batch's targets; a float32 rerun would run both in float32)."""
    objective, teacher = objective_of(run), run.inputs.require_teacher()
    saved = objective.precision, teacher.precision
    objective.precision = replace(objective.precision, name=precision.name)
    teacher.precision = replace(teacher.precision, name=precision.name)
    try:
        yield
    finally:
        objective.precision, teacher.precision = saved


def outer_gradient(run: Distillation, precision: Precision) -> tuple[float, Gradient]:
    """The outer loss of one draw and its gradient, with the passes in `precision`; the draw
    advances the run's generator as an outer step does, and nothing else changes."""
    distilled = run.distilled
    distilled.zero_grad(set_to_none=True)
    with passes_in(run, precision):
        loss = next(iter(objective_of(run).losses(distilled)))  # the engine's first (only) loss
        loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in distilled.named_parameters() if p.grad is not None}
    distilled.zero_grad(set_to_none=True)
    return float(loss.detach()), grads


def compare(a: Gradient, b: Gradient) -> Comparison:
    """Cosine of a and b and ‖a‖ / ‖b‖, per tensor and over all of them concatenated."""
    pairs = {name: (a[name].double().flatten(), b[name].double().flatten()) for name in a}
    pairs["all"] = (torch.cat([u for u, _ in pairs.values()]), torch.cat([v for _, v in pairs.values()]))
    return {name: (float(torch.nn.functional.cosine_similarity(u, v, dim=0)), float(u.norm() / v.norm()))
            for name, (u, v) in pairs.items()}


def draw_pair(run: Distillation, bf16: Precision, fp32: Precision) -> tuple[Comparison, float, str]:
    """bf16 against fp32, and fp32 against itself, on one draw (the generator rewound between the
    three computations and left after the draw)."""
    generator = run.inputs.generator
    state = generator.get_state()
    loss_bf16, g_bf16 = outer_gradient(run, bf16)
    generator.set_state(state)
    loss_fp32, g_fp32 = outer_gradient(run, fp32)
    generator.set_state(state)
    _, g_again = outer_gradient(run, fp32)
    losses = f"loss fp32 {loss_fp32:.6g}, bf16 {loss_bf16:.6g}"
    return compare(g_bf16, g_fp32), compare(g_again, g_fp32)["all"][0], losses


def measure_state(run: Distillation, repeats: int, bf16: Precision, fp32: Precision) -> Comparison:
    """Print `repeats` draws' comparisons at the current state and return their medians; the
    generator is restored afterwards, so the run continues as it would have."""
    generator = run.inputs.generator
    state = generator.get_state()
    draws = []
    for r in range(repeats):
        comparison, floor, losses = draw_pair(run, bf16, fp32)
        draws.append(comparison)
        print(f"  draw {r + 1}: {losses}; cos(fp32, fp32 again) = {floor:.8f}")
    generator.set_state(state)
    medians = {name: (statistics.median(d[name][0] for d in draws),
                      statistics.median(d[name][1] for d in draws)) for name in draws[0]}
    print(f"  {'tensor':<14}" + "".join(f"{'draw ' + str(r + 1):>18}" for r in range(repeats))
          + f"{'median':>18}   (cosine / norm ratio bf16:fp32)")
    for name in medians:
        cells = [*(d[name] for d in draws), medians[name]]
        print(f"  {name:<14}" + "".join(f"{c:>10.5f} /{q:>6.3f}" for c, q in cells))
    return medians


def advance(run: Distillation, steps: int) -> None:
    """`steps` outer steps at the run's precision, as the distill loop takes them."""
    assert run.loop is not None
    for _ in range(steps):
        run.loop.outer_step()


def main(argv: list[str] | None = None) -> dict[int, Comparison]:
    args = parse(argv)
    precision = resolve_precision(args.precision, resolve_device(args.device), args.memory_format)
    bf16, fp32 = replace(precision, name="bf16"), replace(precision, name="fp32")
    run = build_run(args, precision)
    objective_of(run).prepare(run.distilled, silent)  # the pool's initial training, as `OuterLoop.start`
    print(f"{args.method} on {args.preset}, N = {args.budget}, seed {args.seed}: run precision "
          f"{precision.name} ({'channels_last' if precision.channels_last else 'NCHW'}), "
          f"{torch.get_num_threads()} thread(s)")
    results, done = {}, 0
    for k in sorted(int(s) for s in args.steps_before.split(",")):
        advance(run, k - done)
        done = k
        print(f"state after {k} outer steps:")
        results[k] = measure_state(run, args.repeats, bf16, fp32)
    return results


if __name__ == "__main__":
    main()
