"""What one validation found: a Check per rule, the ContractReport holding them all, and the ContractError
that carries a broken contract's report.

Each check has a severity: an "error" breaks the contract; a "warning" is reported and the contract holds.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from lstm_core.data import DataError

MAX_LINES = 10  # line numbers (and offending values) quoted per failing check


@dataclass(frozen=True)
class Check:
    """One expectation on one column, with what was observed in words."""

    expectation: str  # e.g. "expect_column_values_to_not_be_null"
    column: str | None  # the user's column (a helper column's checks are reported on the column it derives from)
    success: bool
    observed: str  # e.g. "3 null value(s) at lines 6, 19, 202"
    severity: str = "error"  # "error" breaks the contract; "warning" is reported and the contract holds
    name: str = ""  # the rule in words, e.g. "strictly increasing within each entity"

    @property
    def result(self) -> str:
        return "pass" if self.success else ("FAIL" if self.severity == "error" else "warn")


@dataclass(frozen=True)
class ContractReport:
    """Every check of one validation, plus GX's own result as a JSON-able dict."""

    checks: list[Check]
    raw: dict
    dropped: tuple[str, ...] = ()  # constant (and, by data.near_constant, near-constant) features, left out from here on
    docs: str | None = None  # index.html of the Data Docs site, when one was built

    @property
    def success(self) -> bool:
        return not self.failures()

    def failures(self) -> list[Check]:
        """Failed checks of severity error: each one breaks the contract."""
        return [c for c in self.checks if not c.success and c.severity == "error"]

    def warnings(self) -> list[Check]:
        """Failed checks of severity warning: reported, but the contract holds."""
        return [c for c in self.checks if not c.success and c.severity != "error"]

    def message(self) -> str:
        """One line per failure, naming the column and the lines to look at."""
        return "\n".join(_line(c) for c in self.failures())

    def summary(self) -> str:
        """One sentence: holds or not, with how many checks, warnings and dropped features."""
        head = "Data contract holds" if self.success else f"Data contract broken by {len(self.failures())} check(s)"
        tail = f"; (near-)constant feature(s) dropped: {', '.join(self.dropped)}" if self.dropped else ""
        return f"{head}: {len(self.checks)} checks, {len(self.warnings())} warning(s){tail}."

    def markdown(self) -> str:
        """The summary, a table with one row per check, then the failures and warnings in full."""
        rows = [self.summary(), "", "| check | column | expectation | severity | result | observed |",
                "|---|---|---|---|---|---|"]
        for c in self.checks:
            cells = (c.name, c.column or "", c.expectation, c.severity, c.result, c.observed)
            rows.append("| " + " | ".join(_cell(x) for x in cells) + " |")
        for title, found in (("Failures", self.failures()), ("Warnings", self.warnings())):
            if found:
                rows += ["", f"**{title}**", ""] + [f"- {_line(c)}" for c in found]
        return "\n".join(rows)

    def extended(self, checks: Iterable[Check]) -> ContractReport:
        """The same report with more checks (the fold dry-run, say) appended."""
        return replace(self, checks=[*self.checks, *checks])


class ContractError(DataError):
    """The data breaks its contract; str() names each failing column and its lines."""

    def __init__(self, report: ContractReport) -> None:
        super().__init__(report.message())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes (Prefect, Dask)
        return (type(self), (self.report,))


def _line(c: Check) -> str:
    return f"column '{c.column}': {c.observed}" if c.column else c.observed


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
