"""What the templates need to draw a turn: current answers, live text, and what may be done next."""

from __future__ import annotations

from dataclasses import dataclass

from app.comparisons.models import Conversation, Generation, Side, Turn, Vote
from app.generation.runner import GenerationRunner


@dataclass(frozen=True)
class ColumnView:
    """One column: a generation and the text to show now (live text while it runs)."""

    side: str
    generation: Generation
    text: str

    @property
    def streaming(self) -> bool:
        """True while the model may still add text."""
        return not self.generation.finished


@dataclass(frozen=True)
class TurnView:
    """A turn as drawn: both columns, whether it is the latest, and its votes."""

    conversation: Conversation
    turn: Turn
    columns: list[ColumnView]
    is_latest: bool
    # Base models that the token lens may score or continue a chat answer with.
    base_models: tuple[str, ...] = ()

    @property
    def streaming(self) -> bool:
        """True while either column is still generating."""
        return any(c.streaming for c in self.columns)

    @property
    def events_url(self) -> str:
        """The SSE stream for this turn, resuming after the text already drawn."""
        offsets = "&".join(f"{c.side}={len(c.text)}" for c in self.columns)
        return f"/turns/{self.turn.id}/events?{offsets}"

    @property
    def can_vote(self) -> bool:
        """Votes are open on the latest turn once both answers are complete."""
        return self.is_latest and not self.streaming and len(self.columns) == 2

    @property
    def current_votes(self) -> list[Vote]:
        """Votes on the answers now shown (a regenerated answer starts without votes)."""
        ids = {c.side: c.generation.id for c in self.columns}
        return [
            v
            for v in self.turn.votes
            if v.generation_a_id == ids.get("a") and v.generation_b_id == ids.get("b")
        ]


def turn_view(
    conversation: Conversation,
    turn: Turn,
    runner: GenerationRunner,
    is_latest: bool,
    base_models: tuple[str, ...] = (),
) -> TurnView:
    """Build the view of one turn, taking running text from the runner."""
    columns = []
    for side in (Side.A, Side.B):
        generation = turn.current(side)
        if generation is None:
            continue
        live = runner.snapshot(generation.id)
        text = live.text if live is not None else generation.text
        columns.append(ColumnView(side.value, generation, text))
    return TurnView(conversation, turn, columns, is_latest, base_models)


def conversation_views(
    conversation: Conversation, runner: GenerationRunner, base_models: tuple[str, ...] = ()
) -> list[TurnView]:
    """Every turn of a conversation, oldest first."""
    last = len(conversation.turns) - 1
    return [
        turn_view(conversation, turn, runner, i == last, base_models)
        for i, turn in enumerate(conversation.turns)
    ]
