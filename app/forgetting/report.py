"""The forgetting report of a scored run: accuracies, the tuned-minus-original difference, and
the items forgotten and learned."""

from __future__ import annotations

from urllib.parse import quote

import numpy as np

from app.config import ModelsFile
from app.errors import InvalidInput
from app.forgetting.bootstrap import LEVEL, RESAMPLES, Bootstrap
from app.forgetting.schemas import (
    Difference,
    ItemChange,
    ItemCounts,
    ModelAccuracy,
    Pair,
    Report,
)
from app.forgetting.scoring import ScoredItem, ScoredRun
from app.runs.models import Run, RunStatus

# Answers are shown this long in the report's lists (the link leads to the whole answers).
EXCERPT_CHARS = 300
FINAL = (RunStatus.DONE, RunStatus.CANCELLED)


def choose_pair(
    run: Run, registry: ModelsFile, original: str | None, tuned: str | None
) -> Pair | None:
    """The pair asked for; else an adapter in the run with its base also in it; else none."""
    if original or tuned:
        if not (original and tuned):
            raise InvalidInput("give both original and tuned (or neither)")
        for name in (original, tuned):
            if name not in run.models:
                known = ", ".join(run.models)
                raise InvalidInput(f"{name!r} is not a model of run {run.id} ({known})")
        if original == tuned:
            raise InvalidInput("original and tuned must be two different models")
        return Pair(original=original, tuned=tuned, chosen_by="request")
    for name in run.models:
        config = registry.get(name)
        if config is not None and config.adapter_of in run.models:
            return Pair(original=config.adapter_of, tuned=name, chosen_by="adapter")
    return None


def results_url(run_id: int, key: str) -> str:
    """The item's row on the run's results page (searched by its id, then scrolled to)."""
    return f"/runs/{run_id}?q={quote(key, safe='')}#item-{quote(key, safe='')}"


def _change(run_id: int, item: ScoredItem, original: int, tuned: int) -> ItemChange:
    def text(index: int) -> str:
        answer = item.answers[index]
        return "" if answer is None else answer.text[:EXCERPT_CHARS]

    reference = item.item.reference or {}
    return ItemChange(
        item=item.item.key,
        prompt=item.item.prompt[:EXCERPT_CHARS],
        reference={k: str(reference.get(k, "")) for k in ("type", "value")},
        original_answer=text(original),
        tuned_answer=text(tuned),
        url=results_url(run_id, item.item.key),
    )


def build(scored: ScoredRun, prompt_set: str, pair: Pair | None, seed: int) -> Report:
    """Accuracies over the items every model answered, with paired bootstrap intervals."""
    run = scored.run
    complete = [item for item in scored.items if item.complete]
    counts = ItemCounts(
        total=len(scored.items) + scored.without_reference,
        scored=len(complete),
        without_reference=scored.without_reference,
        unanswered=len(scored.items) - len(complete),
    )
    matrix = np.array([[bool(c) for c in item.correct] for item in complete], dtype=bool).T
    boot = Bootstrap.of(matrix, seed) if complete else None
    models = []
    for index, (name, slot) in enumerate(zip(run.models, run.slots, strict=True)):
        interval = boot.accuracy(index) if boot else None
        models.append(
            ModelAccuracy(
                model=name, slot=slot,
                correct=int(matrix[index].sum()) if complete else 0, scored=len(complete),
                accuracy=interval.estimate if interval else None,
                ci_low=interval.low if interval else None,
                ci_high=interval.high if interval else None,
            )
        )  # fmt: skip
    difference, forgot, learned = None, [], []
    if pair is not None:
        o, t = run.models.index(pair.original), run.models.index(pair.tuned)
        if boot is not None:
            d = boot.difference(t, o)
            difference = Difference(
                estimate=d.estimate, ci_low=d.low, ci_high=d.high,
                significantly_worse=d.high < 0, significantly_better=d.low > 0,
            )  # fmt: skip
        forgot = [_change(run.id, i, o, t) for i in complete if i.correct[o] and not i.correct[t]]
        learned = [_change(run.id, i, o, t) for i in complete if i.correct[t] and not i.correct[o]]
    return Report(
        run=run.id, status=run.status, prompt_set=prompt_set, final=run.status in FINAL,
        seed=seed, resamples=RESAMPLES, level=LEVEL, items=counts, models=models, pair=pair,
        difference=difference, forgot=forgot, learned=learned,
    )  # fmt: skip
