"""What model calls cost: tokens times an editable price table (pipeline/coders/prices.toml,
overridden per model under [prices."MODEL"] in qcode.toml). A coder that pays for its calls prices
its usage with it (`BaseCoder.cost`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.config import config_path, config_table
from pipeline.errors import SettingsError, problems
from pipeline.suggestion import Usage

TABLE = Path(__file__).with_name("prices.toml")


class Price(BaseModel):
    input: float
    cached_input: float | None = None
    output: float

    def cost(self, usage: Usage, discount: float = 1.0) -> float:
        cached = usage.cached_input_tokens
        cached_rate = self.cached_input if self.cached_input is not None else self.input
        dollars = (
            (usage.input_tokens - cached) * self.input + cached * cached_rate + usage.output_tokens * self.output
        ) / 1_000_000
        return round(dollars * discount, 6)


def price_table() -> tuple[dict[str, Price], float]:
    """The shipped table with qcode.toml's overrides; a malformed entry is a SettingsError naming it."""
    data = tomllib.loads(TABLE.read_text(encoding="utf-8"))
    prices = _prices(data.get("models", {}), TABLE)
    prices.update(_prices(config_table("prices"), config_path()))
    return prices, float(data.get("batch_discount", 0.5))


def _prices(table: dict[str, Any], where: Path) -> dict[str, Price]:
    prices = {}
    for name, values in table.items():
        try:
            prices[name] = Price.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(f'[prices."{name}"]: {problems(exc)}', file=where) from None
    return prices
