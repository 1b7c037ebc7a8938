"""The one error type bad input turns into: every problem, with its dotted path and YAML line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    """Dotted path of the offending key (``optim.lr``); empty for the whole document."""
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path or "(document)"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class SpecError(ValueError):
    """A spec or study file is invalid. The CLI prints it and exits with code 2."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class FieldError(ValueError):
    """Raised inside validators for cross-field rules, naming the YAML paths at fault.

    Pydantic keeps the exception in the error's context, so the loader can recover the paths
    (and their lines) instead of pointing at the enclosing section.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
