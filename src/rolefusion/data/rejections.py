"""Why an example was refused, and the tally of every refusal: nothing is dropped silently.

``data.on_error=raise`` turns the first :class:`Rejected` into a :class:`ManifestError` naming
the manifest, line and field; ``skip`` drops the example and counts it in a :class:`DropReport`,
which is printed at the end of set-up, logged and written into the run directory.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rolefusion.data.manifest import ManifestError

EXAMPLES_PER_REASON = 5
"""How many file:line places the report keeps per reason: enough to find the pattern."""


class Rejected(Exception):
    """An example a cleaning step refuses. ``reason`` is a short, stable phrase that the drop
    counts are keyed by (``"empty text"``); ``detail`` says more about this one example."""

    def __init__(self, reason: str, field: str | None = None, detail: str = "") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason, self.field, self.detail = reason, field, detail


@dataclass
class DropReport:
    """Examples dropped (or, with another ``verb``, found) per split and reason, with where the
    first few of each were."""

    counts: dict[str, Counter] = field(default_factory=dict)
    examples: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    verb: str = "dropped"

    def add(self, split: str, error: ManifestError) -> None:
        reason = error.reason
        self.counts.setdefault(split, Counter())[reason] += 1
        places = self.examples.setdefault(split, {}).setdefault(reason, [])
        if len(places) < EXAMPLES_PER_REASON:
            places.append(str(error))

    def as_dict(self) -> dict:
        return {
            split: {
                self.verb: sum(counts.values()),
                "by_reason": dict(counts.most_common()),
                "examples": self.examples.get(split, {}),
            }
            for split, counts in self.counts.items()
        }

    def lines(self) -> list[str]:
        """One line per split and reason, for the log and the console."""
        return [
            f"{split}: {self.verb} {n} example{'s' if n != 1 else ''}: {reason} (e.g. "
            f"{self.examples[split][reason][0]})"
            for split, counts in self.counts.items()
            for reason, n in counts.most_common()
        ]
