"""What model calls cost: tokens times an editable price table (pipeline/coders/prices.toml,
overridden per model under [prices."MODEL"] in qcode.toml). A coder that pays for its calls prices
its usage with it (`BaseCoder.cost`)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel

from pipeline.config import config_path
from pipeline.errors import SettingsError
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
    """The shipped table with qcode.toml's overrides; a malformed entry is a SettingsError."""
    try:
        return _price_table()
    except (ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"price table: {exc}") from exc


def _price_table() -> tuple[dict[str, Price], float]:
    data = tomllib.loads(TABLE.read_text(encoding="utf-8"))
    prices = {name: Price(**values) for name, values in data.get("models", {}).items()}
    discount = float(data.get("batch_discount", 0.5))
    path = config_path()
    if path.is_file():
        overrides = tomllib.loads(path.read_text(encoding="utf-8")).get("prices", {})
        prices.update({name: Price(**values) for name, values in overrides.items()})
    return prices, discount
