"""The generation row: one model's answer, with everything needed to reproduce it.

Whatever asks for a generation owns the row through a foreign key of its own: a comparison's
turn (turn_id; a lens continuation too) or a batch run's item (run_item_id), at least one of
them (a check constraint): a run's answer opened for rating also belongs to the turn that
shows it to raters (app.annotation). This layer knows only the row and its life.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.generation.contract import GenerationRequest
from app.generation.lazy_json import LazyJSONList


class GenerationStatus(StrEnum):
    """Where a generation is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        """True once nothing more will be generated."""
        return self not in (GenerationStatus.PENDING, GenerationStatus.RUNNING)


class Generation(Base):
    """One model's answer to one prompt, with everything needed to reproduce it."""

    __tablename__ = "generations"
    # An owner: a comparison's turn or a batch run's item (or both, once rated in a queue).
    __table_args__ = (
        CheckConstraint("turn_id IS NOT NULL OR run_item_id IS NOT NULL", name="has_owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int | None] = mapped_column(
        ForeignKey("turns.id", ondelete="CASCADE"), index=True
    )
    run_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("run_items.id", ondelete="CASCADE"), index=True
    )
    # The column it belongs to ("a" to "d"), or "p" for a prefix continuation (token lens).
    slot: Mapped[str] = mapped_column(String(1))
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    model_name: Mapped[str] = mapped_column(String(64))
    model_kind: Mapped[str] = mapped_column(String(10))
    served_model: Mapped[str] = mapped_column(String(256))
    model_revision: Mapped[str | None] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(300))
    prompt_format: Mapped[str] = mapped_column(String(20))
    # Exactly what the model received: raw text for base models, messages for chat models.
    prompt_text: Mapped[str | None] = mapped_column(Text)
    messages: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=GenerationStatus.PENDING)
    text: Mapped[str] = mapped_column(Text, default="")
    finish_reason: Mapped[str | None] = mapped_column(String(40))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Token view: [{token, logprob, top: [[token, logprob], ...], token_id}]
    # (app.generation.logprobs.TokenInfo), the answer's tokens without a final stop token;
    # None when the server sent no logprobs.
    # Decoded on first use only: most readers of a generation never look at its tokens.
    tokens: Mapped[list[dict[str, Any]] | None] = mapped_column(LazyJSONList)
    # The exact string the model saw after its chat template (base: prompt_text), fetched on
    # demand from the server's tokenizer, and its token count.
    rendered_prompt: Mapped[str | None] = mapped_column(Text)
    rendered_prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    # A prefix continuation (slot "p"): which generation's first `prefix_tokens` tokens it
    # continues; its prompt_text is the base context followed by that prefix.
    prefix_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), index=True
    )
    prefix_tokens: Mapped[int | None] = mapped_column(Integer)
    # The process (app_instances.id) that runs or ran it: an unfinished generation is
    # interrupted only when its owner stopped beating (app.generation.liveness).
    owner: Mapped[str | None] = mapped_column(String(36))

    @classmethod
    def pending(
        cls,
        request: GenerationRequest,
        *,
        slot: str,
        prompt_format: str,
        seed: int | None,
        owner: str | None,
        **links: Any,
    ) -> Generation:
        """A row for a request about to be run, recording exactly what will be sent; `links`
        name what owns it (turn_id, run_item_id, prefix_of_id, ...)."""
        model = request.model
        return cls(
            slot=slot,
            is_current=True,
            model_name=model.name,
            model_kind=model.kind.value,
            served_model=model.model,
            model_revision=model.revision,
            endpoint=request.endpoint,
            prompt_format=prompt_format,
            prompt_text=request.prompt_text,
            messages=request.messages,
            params=request.sampling,
            seed=seed,
            status=GenerationStatus.PENDING,
            text="",
            # Owned from the start, so that no other process takes it for abandoned.
            owner=owner,
            **links,
        )

    @property
    def finished(self) -> bool:
        """True once the generation has ended, however it ended."""
        return GenerationStatus(self.status).finished


class AppInstance(Base):
    """One running app process: its id and when it last said it was alive."""

    __tablename__ = "app_instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
