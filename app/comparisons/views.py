"""What the templates and the API show of a comparison: columns in display order, their labels
(model names, or "Model 1, 2, ..." while a blind comparison is unjudged), live text, and what
may be done next. Blind mode lives here alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.comparisons.models import Conversation, Judgement, Participant, Turn
from app.generation.records import Generation
from app.generation.runner import GenerationRunner


def revealed_to(conversation: Conversation, rater: str | None) -> bool:
    """Whether names may be shown: always, unless blind and this rater has judged nothing yet
    (or it is a blind rating-queue item)."""
    if not conversation.blind:
        return True
    if not rater or conversation.run_item_id is not None:
        # A blind queue item's names show only in the queue, as its task allows.
        return False
    return any(j.rater == rater for t in conversation.turns for j in t.judgements)


def label(participant: Participant, revealed: bool) -> str:
    """A column's display name."""
    return participant.model_name if revealed else f"Model {participant.position + 1}"


@dataclass(frozen=True)
class ColumnView:
    """One column: its slot, label, a generation and the text to show now (live while running)."""

    slot: str
    position: int
    label: str
    generation: Generation
    text: str
    revealed: bool

    @property
    def streaming(self) -> bool:
        """True while the model may still add text."""
        return not self.generation.finished

    @property
    def side(self) -> str:
        """The slot (the name older templates and tests use)."""
        return self.slot


@dataclass(frozen=True)
class TurnView:
    """A turn as drawn: its columns, whether it is the latest, and its judgements."""

    conversation: Conversation
    turn: Turn
    columns: list[ColumnView]
    is_latest: bool
    revealed: bool
    # Base models that the token lens may score or continue a chat answer with.
    base_models: tuple[str, ...] = ()
    # Stored token-shift analyses of the answers, by generation id (drawn by the lens).
    analyses: Mapping[int, object] = field(default_factory=dict)
    # Team mode, a rater reading: only this rater's judgements are shown (None: everyone's).
    only_rater: str | None = None
    # Team mode: the signed-in account, who judges as itself (the form asks no name).
    account: str | None = None

    @property
    def streaming(self) -> bool:
        """True while any column is still generating."""
        return any(c.streaming for c in self.columns)

    @property
    def events_url(self) -> str:
        """The SSE stream for this turn, resuming after the text already drawn."""
        offsets = "&".join(f"{c.slot}={len(c.text)}" for c in self.columns)
        return f"/turns/{self.turn.id}/events?{offsets}"

    @property
    def n(self) -> int:
        """How many answers the turn has."""
        return len(self.columns)

    @property
    def can_vote(self) -> bool:
        """Votes are open on the latest turn once every answer is complete."""
        return self.is_latest and not self.streaming and self.n >= 2

    @property
    def current_votes(self) -> list[Judgement]:
        """Judgements of the answers now shown (a regenerated answer starts without any)."""
        ids = {c.slot: c.generation.id for c in self.columns}
        return [
            j
            for j in self.turn.judgements
            if j.generation_ids == ids and self.only_rater in (None, j.rater)
        ]

    def label_of(self, slot: str) -> str:
        """The display name of a slot's column."""
        return next((c.label for c in self.columns if c.slot == slot), slot)


def turn_view(
    conversation: Conversation,
    turn: Turn,
    runner: GenerationRunner,
    is_latest: bool,
    revealed: bool,
    base_models: tuple[str, ...] = (),
    analyses: Mapping[int, object] | None = None,
    only_rater: str | None = None,
    account: str | None = None,
) -> TurnView:
    """Build the view of one turn, taking running text from the runner."""
    columns = []
    for participant in conversation.participants:
        generation = turn.current(participant.slot)
        if generation is None:
            continue
        live = runner.snapshot(generation.id)
        text = live.text if live is not None else generation.text
        columns.append(
            ColumnView(
                participant.slot,
                participant.position,
                label(participant, revealed),
                generation,
                text,
                revealed,
            )
        )
    return TurnView(
        conversation,
        turn,
        columns,
        is_latest,
        revealed,
        base_models,
        analyses or {},
        only_rater,
        account,
    )


def conversation_views(
    conversation: Conversation,
    runner: GenerationRunner,
    rater: str | None = None,
    base_models: tuple[str, ...] = (),
    analyses: Mapping[int, object] | None = None,
    only_rater: str | None = None,
    account: str | None = None,
) -> list[TurnView]:
    """Every turn of a conversation, oldest first, as this rater may see it."""
    revealed = revealed_to(conversation, rater)
    last = len(conversation.turns) - 1
    return [
        turn_view(
            conversation,
            turn,
            runner,
            i == last,
            revealed,
            base_models,
            analyses,
            only_rater,
            account,
        )
        for i, turn in enumerate(conversation.turns)
    ]
