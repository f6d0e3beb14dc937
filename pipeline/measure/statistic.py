"""A statistic as qcode reports it: a point estimate, its 95% interval, and, when the data leave it
undefined, why.

`Statistic` is the one type for it, read through three typed accessors:

    kappa.value      0.62, or None when undefined on the data
    kappa.interval   (0.50, 0.72), or None (undefined, no bootstrap, or no replicate defined it)
    kappa.reason     None, or why the value is undefined ("never applied: chance agreement is 1 ...")

Results that hold statistics (`StatisticGroup`: the agreement report's overall, pairwise and per-code
entries) write each one as the flat keys their JSON objects have always had, its plain name, a
`_ci95` sibling and, when undefined, an `_undefined` sibling:

    "cohen_kappa": 0.62, "cohen_kappa_ci95": [0.5, 0.72]
    "fleiss_kappa": null, "fleiss_kappa_ci95": null, "fleiss_kappa_undefined": "never applied: ..."

A statistic a group does not report (the weighted kappas at the nominal level) is a field left None:
no key at all. Outside a group (the report's page data) a statistic is written as itself:
`{"value": ..., "ci": [...], "undefined": ...}`. Neither form ever holds NaN or infinity.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

CI = "_ci95"
UNDEFINED = "_undefined"


class Statistic(BaseModel):
    """A point estimate, its 95% interval and why it is undefined (value None with a reason); a
    statistic with neither value nor reason is one that was not computed (an empty cell)."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True)

    value: float | None = None
    interval: tuple[float, float] | None = Field(default=None, serialization_alias="ci")
    reason: str | None = Field(default=None, serialization_alias="undefined")

    @model_validator(mode="after")
    def _finite(self) -> Statistic:
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"a statistic is a finite number or None (undefined), not {self.value}")
        if self.interval is not None and (self.value is None or not all(map(math.isfinite, self.interval))):
            raise ValueError("an interval needs a finite value and finite bounds")
        if self.value is not None and self.reason is not None:
            raise ValueError("a defined statistic has no reason for being undefined")
        return self

    @classmethod
    def estimate(cls, value: float | None, interval: Any = None, reason: str | None = None) -> Statistic:
        """From numbers as the computation gives them (numpy, NaN for undefined): a NaN or infinite
        value is undefined, with `reason`; an interval with a NaN bound, or of an undefined value, is None."""
        point = None if value is None or not math.isfinite(value) else float(value)
        bounds = None
        if point is not None and interval is not None:
            low, high = float(interval[0]), float(interval[1])
            if math.isfinite(low) and math.isfinite(high):
                bounds = (low, high)
        return cls(value=point, interval=bounds, reason=None if point is not None else reason)

    def flat(self, name: str) -> dict[str, Any]:
        """The statistic under `name` as a group writes it: NAME, NAME_ci95 and, when undefined, NAME_undefined."""
        keys: dict[str, Any] = {name: self.value, name + CI: list(self.interval) if self.interval else None}
        if self.value is None and self.reason is not None:
            keys[name + UNDEFINED] = self.reason
        return keys


def _absent(value: Any) -> bool:
    """`exclude_if` of a field that is left out of the JSON object, not written as null, when None."""
    return value is None


def optional(**kwargs: Any) -> Any:
    """A field that is None when the result has no such thing, and then no key in the JSON object."""
    return Field(default=None, exclude_if=_absent, **kwargs)


class StatisticGroup(BaseModel):
    """A result holding statistics among other fields: each `Statistic` field is written as its flat
    keys, in the field's place; a field left None (declared with `optional()`) is no key at all.
    The flat keys read back: `Agreement.model_validate_json(text)` gives the result again."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _fold(cls, data: Any) -> Any:
        """Flat keys (NAME, NAME_ci95, NAME_undefined) as the statistic NAME, when reading JSON data."""
        if not isinstance(data, dict):
            return data
        folded = dict(data)
        for name in cls.model_fields:
            if name + CI in data:
                folded[name] = Statistic(
                    value=data.get(name), interval=data[name + CI], reason=data.get(name + UNDEFINED)
                )
                del folded[name + CI]
                folded.pop(name + UNDEFINED, None)
        return folded

    @model_serializer(mode="wrap")
    def _flat(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        out: dict[str, Any] = {}
        for key, value in data.items():
            field = self.__dict__.get(key)
            if isinstance(field, Statistic):
                out.update(field.flat(key))
            else:
                out[key] = value
        return out

    def statistics(self) -> list[tuple[str, Statistic]]:
        """The group's own statistics, by name, in the order the JSON object writes them."""
        return [(name, value) for name, value in self.__dict__.items() if isinstance(value, Statistic)]
