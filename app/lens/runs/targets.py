"""Which answers of a run the bulk token-shift analysis scores, and under which base model."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ModelConfig, ModelKind, ModelsFile
from app.errors import InvalidInput
from app.generation.records import Generation, GenerationStatus
from app.runs.models import Run
from app.runs.queries import latest_ids


@dataclass(frozen=True)
class Target:
    """One finished chat or adapter answer of a run, with the base model that scores it."""

    generation_id: int
    model_name: str
    base: ModelConfig | None  # None: no default base model, and none was chosen


def run_bases(run: Run, models: ModelsFile) -> list[ModelConfig]:
    """The run's own base models (adapters left out: their answers are what is scored)."""
    found = [models.get(name) for name in run.models]
    return [m for m in found if m is not None and m.kind is ModelKind.BASE and not m.is_adapter]


def chosen_base(models: ModelsFile, name: str | None) -> ModelConfig | None:
    """The base model a user named (InvalidInput if it is not one), or None."""
    if name is None:
        return None
    model = models.get(name)
    if model is None:
        known = ", ".join(models.names_of_kind(ModelKind.BASE)) or "none"
        raise InvalidInput(f"unknown model {name!r} (base models: {known})")
    if model.kind is not ModelKind.BASE or model.is_adapter:
        raise InvalidInput(f"{name} is not a base model")
    return model


def default_base(run: Run, models: ModelsFile, model_name: str) -> ModelConfig | None:
    """The adapter's own base model, else the run's one base model (None if it has 0 or 2+)."""
    parent = models.parent_of(model_name)
    if parent is not None and parent.kind is ModelKind.BASE:
        return parent
    bases = run_bases(run, models)
    return bases[0] if len(bases) == 1 else None


def scored(kind: str, model: ModelConfig | None) -> bool:
    """Whether an answer is one the analysis scores: a chat model's, or an adapter's."""
    return kind == ModelKind.CHAT.value or (model is not None and model.is_adapter)


async def targets(
    session: AsyncSession, run: Run, models: ModelsFile, base_name: str | None
) -> list[Target]:
    """The latest finished, non-empty chat and adapter answers of a run, in item order."""
    chosen = chosen_base(models, base_name)
    rows = await session.execute(
        select(Generation.id, Generation.model_name, Generation.model_kind)
        .where(
            Generation.id.in_(latest_ids(run.id)),
            Generation.status == GenerationStatus.DONE,
            Generation.text != "",
        )
        .order_by(Generation.run_item_id, Generation.slot)
    )
    found = []
    for generation_id, name, kind in rows.all():
        if not scored(kind, models.get(name)):
            continue
        base = chosen or default_base(run, models, name)
        found.append(Target(generation_id, name, base))
    return found


def check_startable(run: Run, models: ModelsFile, found: list[Target]) -> None:
    """Refuse, with a message saying what to do, a run with nothing to score or no base."""
    if not found:
        raise InvalidInput(
            f"run {run.id} has no finished chat or adapter answers to analyse (token shift "
            "scores a chat model's answers under a base model)"
        )
    if all(t.base is not None for t in found):
        return
    bases = run_bases(run, models)
    configured = ", ".join(models.names_of_kind(ModelKind.BASE)) or "none configured"
    if bases:
        names = ", ".join(m.name for m in bases)
        raise InvalidInput(f"run {run.id} has several base models ({names}): choose one as base")
    raise InvalidInput(
        f"run {run.id} has no base model to score its answers with: choose one as base "
        f"(base models: {configured})"
    )
