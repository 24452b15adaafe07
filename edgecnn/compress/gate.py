"""The accuracy gate shared by prune, quantize and convert: a compressed or converted
model is measured on the held-out split beside its source, and refused (nothing
written, exit 3) when it lost more than the budget.

The budget is in points of top-1 for classifiers and of mAP@0.5:0.95 for detectors:
mAP@0.5 hides the loss of box precision that int8 causes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from edgecnn.core.errors import GateRefused
from edgecnn.core.task import get_task

DEFAULT_MAX_DROP = 1.0  # points


@dataclass
class GateReport:
    metric: str
    before: float  # fraction 0..1
    after: float
    max_drop: float  # points
    images: int

    @property
    def drop(self) -> float:
        """Lost points (negative when the result is better)."""
        return 100.0 * (self.before - self.after)

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_drop + 1e-9

    def to_dict(self) -> dict:
        return {**asdict(self), "drop": self.drop, "passed": self.passed}

    def describe(self) -> str:
        verdict = "within" if self.passed else "beyond"
        return (f"{self.metric} {100 * self.before:.2f} -> {100 * self.after:.2f} on {self.images} held-out images: "
                f"drop {self.drop:+.2f} points, {verdict} the budget of {self.max_drop:.2f}")


def compare(task: str, before: dict, after: dict, max_drop: float = DEFAULT_MAX_DROP) -> GateReport:
    metric = get_task(task).primary_metric
    return GateReport(metric, float(before[metric]), float(after[metric]), float(max_drop),
                      int(after.get("images", 0)))


def enforce(report: GateReport, force: bool = False, what: str = "model") -> None:
    """Raise GateRefused (exit 3) when the drop is beyond the budget, unless forced."""
    if not report.passed and not force:
        raise GateRefused(f"{what} not written: {report.describe()} (pass --force to write it anyway)")
