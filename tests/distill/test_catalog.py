"""The torch-free catalog (`distill.catalog`) agrees with the methods it restates: names,
summaries, needs, augmentations, and every budget, or the same error, across presets and settings."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from ssdd_cli.budget import ImageShape
from ssdd_cli.distill.augment import get_augmentation, list_augmentations
from ssdd_cli.distill.catalog import (
    AUGMENTATION_VIEWS,
    BUDGET_SETTINGS,
    METHOD_CARDS,
    method_names,
    plan_budget,
)
from ssdd_cli.distill.methods import get_method, list_methods
from ssdd_cli.errors import SSDDError
from ssdd_cli.presets import get_preset


def test_cards_restate_the_registered_methods() -> None:
    assert method_names() == list_methods()
    for name, card in METHOD_CARDS.items():
        method = get_method(name)
        assert (card.summary, card.needs_teacher, card.needs_labels) == (
            method.summary, method.needs_teacher, method.needs_labels)
        assert set(BUDGET_SETTINGS[card.budget]) <= set(method.options), name


def test_augmentation_views_are_the_registered_ones() -> None:
    assert sorted(AUGMENTATION_VIEWS) == list_augmentations()
    assert all(get_augmentation(a).A == n for a, n in AUGMENTATION_VIEWS.items())


def _outcome(fn: Any) -> tuple[Any, ...]:
    try:
        r = fn()
    except SSDDError as e:
        return ("error", type(e).__name__, e.option, e.exit_code)
    return ("ok", r.m, r.components, r.allowed, r.convention, r.per_class)


SETTINGS: dict[str, list[dict[str, Any]]] = {
    "parameterized": [{}, {"U": 4, "V": 4}, {"U": 0}, {"scale": 4}, {"scale": 3}, {"hidden": -1},
                      {"hidden": 0}, {"aug": "jigsaw"}, {"aug": "crop", "targets": "ideal"},
                      {"aug": "none"}, {"aug": "none", "targets": "bias"}, {"targets": "same"},
                      {"aug": "nope"}, {"targets": "nope"}, {"V": 10_000}, {"count_targets": True}],
    "raw": [{}, {"count_targets": True}, {"U": 4}],
    "per-class": [{}, {"count_targets": True}, {"hidden": 3}],
}


@pytest.mark.parametrize("method", sorted(METHOD_CARDS))
def test_plan_budget_is_the_methods_plan(method: str) -> None:
    card = METHOD_CARDS[method]
    for preset_name, N, d_y in itertools.product(("digits", "shapes", "cifar100"), (0, 1, 2, 10, 20, 100),
                                                  (128, 512)):
        preset = get_preset(preset_name)
        d_y = d_y if card.needs_teacher else 0
        shape = ImageShape(preset.channels, preset.resolution, preset.resolution)
        for settings in SETTINGS[card.budget] + [{}]:
            m = get_method(method)
            ours = _outcome(lambda: plan_budget(method, preset, N, d_y, **settings))  # noqa: B023
            theirs = _outcome(lambda: m.plan(m.configure(preset, N, d_y, **settings), shape, d_y))  # noqa: B023
            if ours[0] == "error" and theirs[0] == "error":
                assert ours[1:] == theirs[1:], (method, preset_name, N, settings, ours, theirs)
            else:
                assert ours == theirs, (method, preset_name, N, settings)


def test_per_class_methods_without_classes_are_refused_alike() -> None:
    preset = replace(get_preset("digits"), classes=None)
    with pytest.raises(SSDDError) as ours:
        plan_budget("dm", preset, 20, 0)
    with pytest.raises(SSDDError) as theirs:
        get_method("dm").configure(preset, 20, 0)
    assert ours.value.option == theirs.value.option == "source"
