"""What the run token-shift API takes and answers."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.lens.shift import DEFAULT_TOP_K, MAX_TOP_K


class JobStatus(StrEnum):
    """Where a run's token-shift job is."""

    NONE = "none"  # never started
    RUNNING = "running"
    DONE = "done"  # every answer was tried; failures (if any) can be retried


class RunShiftInput(BaseModel):
    """Start (or go on with, or retry the failures of) a run's token-shift analysis."""

    model_config = ConfigDict(extra="forbid")

    base: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the base model to score with; default: each answer's adapter's base, "
        "else the run's one base model",
    )
    top_k: int = Field(default=DEFAULT_TOP_K, ge=1, le=MAX_TOP_K)


class ShiftFailureOut(BaseModel):
    """An answer the job could not analyse, and why."""

    generation_id: int
    item: str
    model: str
    base: str
    error: str


class RunShiftStatus(BaseModel):
    """How far a run's token-shift analysis has got."""

    run_id: int
    status: JobStatus
    base: str | None = Field(description="the chosen base model (null: each answer's default)")
    top_k: int
    total: int = Field(description="finished chat and adapter answers of the run")
    done: int = Field(description="answers analysed under their base model")
    failed: int
    pending: int
    failures: list[ShiftFailureOut]
    problem: str | None = Field(
        default=None, description="why the job cannot start, when it cannot"
    )

    @property
    def finished(self) -> int:
        """Answers that were tried, well or not."""
        return self.done + self.failed
