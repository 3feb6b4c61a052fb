"""A protocol as a comparison names it: `linear`, its few-shot form `linear@5shot` (K labelled
images per class) or its limited-label form `linear@1%` (a stratified P% of the labelled train
images); the registered name must exist and, for either form, train on labels."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ssdd_cli.errors import UsageError
from ssdd_cli.train.protocols import BACKBONE, get_protocol

_SHOTS = re.compile(r"^(?P<name>[^@]+)@(?P<k>\d+)shots?$")
_PERCENT = re.compile(r"^(?P<name>[^@]+)@(?P<p>\d+(\.\d+)?)%$")


@dataclass(frozen=True)
class ProtocolSpec:
    """A protocol and, for its few-shot form, the labelled images per class (`linear@5shot`),
    or, for its limited-label form, the percentage of the labelled train images (`linear@1%`)."""

    name: str
    shots: int | None = None
    percent: float | None = None

    @property
    def label(self) -> str:
        if self.percent is not None:
            return f"{self.name}@{self.percent:g}%"
        return self.name if self.shots is None else f"{self.name}@{self.shots}shot"

    @property
    def fraction(self) -> float | None:
        """The fraction of the labels a limited-label probe trains on (None: not one)."""
        return None if self.percent is None else self.percent / 100

    @property
    def draws_labels(self) -> bool:
        """Whether its labelled images are a draw (few-shot or limited labels), averaged over draws."""
        return self.shots is not None or self.percent is not None

    @property
    def on_backbone(self) -> bool:
        """Whether it probes a pretrained backbone (False: it trains its own networks on a
        labelled set, as `classify`)."""
        return get_protocol(self.name).input == BACKBONE

    @classmethod
    def parse(cls, text: str) -> ProtocolSpec:
        """`linear`, `linear@5shot` or `linear@1%`; the name must be registered and, for either
        form, train on labels."""
        match = _SHOTS.match(text.strip())
        share = _PERCENT.match(text.strip())
        name, shots = (match["name"], int(match["k"])) if match else (text.strip(), None)
        percent = float(share["p"]) if share else None
        name = share["name"] if share else name
        if "@" in name:
            raise UsageError(f"cannot read protocol {text!r}; write a protocol name, name@Kshot for its "
                             "few-shot form or name@P% for P% of the labels.", option="protocols")
        protocol = get_protocol(name)
        if (shots is not None or percent is not None) and not protocol.uses_shots:
            what = "takes no shots" if shots is not None else "does not train on labels"
            raise UsageError(f"cannot use protocol {text!r}: the {name} protocol {what}.", option="protocols")
        if shots is not None and shots < 1 or percent is not None and not 0 < percent <= 100:
            why = "at least one shot is needed" if shots is not None else "the share is in (0, 100]%"
            raise UsageError(f"cannot use protocol {text!r}: {why}.", option="protocols")
        return cls(name, shots, percent)
