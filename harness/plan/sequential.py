"""The suite's ``[sequential]`` table: whether and how configurations stop once their gates are decided.

What the options mean, and the stopping rule that reads them: :mod:`harness.judge.sequential`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from harness import options
from harness.errors import Where
from harness.options import option


@dataclass(frozen=True)
class SequentialOptions:
    """The suite's ``[sequential]`` table."""

    enabled: bool = option(
        "true: stop each configuration once its gates are decided (--sequential turns it on)", default=False
    )
    first: int = option("samples before the first look (an interval needs a spread)", default=8, minimum=2)
    growth: float = option("each look's n is the previous one's times this, in whole batches", default=2.0)
    alpha: float = option("error level of each gate's always-valid interval", default=0.05)

    def validate(self, where: Where) -> None:
        if self.growth <= 1:
            raise where.error("growth", f"must be > 1, got {self.growth:g}")
        if not 0 < self.alpha < 0.5:
            raise where.error("alpha", f"must be between 0 and 0.5, got {self.alpha:g}")

    def looks(self, total: int, batch: int) -> list[int]:
        """The sample counts at which gates are judged: geometric, in whole batches, ending at ``total``."""
        looks: list[int] = []
        n = float(max(self.first, 1))
        while True:
            at = min(total, max(batch, math.ceil(n / batch) * batch))
            if not looks or at > looks[-1]:
                looks.append(at)
            if at >= total:
                return looks
            n *= self.growth

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_sequential(table: Any, where: Where) -> SequentialOptions:
    """The ``[sequential]`` table (absent: off)."""
    if table is None:
        return SequentialOptions()
    if not isinstance(table, dict):
        raise where.error("", "expected a table like { enabled = true, first = 8 }")
    return options.parse(SequentialOptions, table, where)
