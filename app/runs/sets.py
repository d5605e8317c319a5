"""Prompt set use cases: import (one transaction), list, look up, search items."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import Conflict, InvalidInput, NotFound
from app.runs import importers
from app.runs.models import PromptItem, PromptSet
from app.runs.schemas import ItemInput, PromptSetInput

DATA_DIR = Path(__file__).resolve().parent / "data"
# The sets shipped with the playground, added to an empty database on start.
BUNDLED_SETS = {
    "general-instructions": DATA_DIR / "general_instructions.jsonl",
    "general-knowledge": DATA_DIR / "general_knowledge.jsonl",
    # Held-out items of the demo-narrow variants' task (playground_tools/demo_models/narrow.py).
    "narrow-task": DATA_DIR / "narrow_task.jsonl",
}


@dataclass
class PromptSetService:
    """Imports and reads prompt sets; commits before returning a created set."""

    session: AsyncSession
    max_items: int

    async def create(self, data: PromptSetInput) -> PromptSet:
        """Validate every item first, then store the set and its items in one transaction."""
        if data.items is not None:
            items = importers.validate_rows(
                enumerate((i.model_dump() for i in data.items), start=1), self.max_items, "item"
            )
        else:
            items = importers.parse_text(data.format or "jsonl", data.content or "", self.max_items)
        return await self.store(data.name, items, data.source)

    async def store(self, name: str, items: list[ItemInput], source: str | None) -> PromptSet:
        """Store validated items as a new set named `name`."""
        name = name.strip()
        if not name:
            raise InvalidInput("the set needs a name")
        existing = await self.session.scalar(select(PromptSet.id).where(PromptSet.name == name))
        if existing is not None:
            raise Conflict(f"a prompt set named {name!r} already exists")
        prompt_set = PromptSet(name=name, source=source)
        prompt_set.items = [
            PromptItem(
                position=i,
                key=item.id or f"item-{i + 1}",
                prompt=item.prompt,
                system=(item.system or "").strip() or None,
                tags=item.tags,
                reference=None if item.reference is None else item.reference.model_dump(),
            )
            for i, item in enumerate(items)
        ]
        keys = [item.key for item in prompt_set.items]
        if len(set(keys)) != len(keys):
            raise InvalidInput("item ids clash with generated ids (item-N): give every item an id")
        self.session.add(prompt_set)
        await self.session.commit()
        return prompt_set

    async def get(self, ref: str | int) -> PromptSet:
        """A set by id or name."""
        query = select(PromptSet)
        if isinstance(ref, int) or ref.isdigit():
            query = query.where(or_(PromptSet.id == int(ref), PromptSet.name == str(ref)))
        else:
            query = query.where(PromptSet.name == ref)
        found = (await self.session.scalars(query)).first()
        if found is None:
            raise NotFound(f"no prompt set {ref!r}")
        return found

    async def all(self) -> list[tuple[PromptSet, int]]:
        """Every set with its item count, newest first."""
        counts = (
            select(PromptItem.prompt_set_id, func.count().label("n"))
            .group_by(PromptItem.prompt_set_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(PromptSet, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.prompt_set_id == PromptSet.id)
            .order_by(PromptSet.id.desc())
        )
        return [(s, int(n)) for s, n in rows.all()]

    async def items(
        self, prompt_set: PromptSet, search: str = "", tag: str = "", limit: int = 500
    ) -> list[PromptItem]:
        """A set's items in order, filtered by text (prompt or id) and tag."""
        query = select(PromptItem).where(PromptItem.prompt_set_id == prompt_set.id)
        if search.strip():
            needle = f"%{search.strip().lower()}%"
            query = query.where(
                or_(
                    func.lower(PromptItem.prompt).like(needle),
                    func.lower(PromptItem.key).like(needle),
                )
            )
        found = list(await self.session.scalars(query.order_by(PromptItem.position)))
        if tag:
            # Tags are a JSON list: filtered here, portable across SQLite and PostgreSQL.
            found = [item for item in found if tag in (item.tags or [])]
        return found[:limit]

    async def tags(self, prompt_set: PromptSet) -> list[str]:
        """Every tag used in a set, sorted."""
        rows = await self.session.scalars(
            select(PromptItem.tags).where(PromptItem.prompt_set_id == prompt_set.id)
        )
        return sorted({tag for tags in rows for tag in (tags or [])})


async def add_bundled_sets(sessions: async_sessionmaker[AsyncSession], max_items: int) -> int:
    """Add the shipped sets when no set exists yet; returns how many were added."""
    async with sessions() as session:
        if await session.scalar(select(func.count()).select_from(PromptSet)):
            return 0
        service = PromptSetService(session, max_items)
        for name, path in BUNDLED_SETS.items():
            items = importers.parse_jsonl(path.read_text(encoding="utf-8"), max_items)
            try:
                await service.store(name, items, f"bundled: {path.name}")
            except (Conflict, IntegrityError):
                # Another replica starting at the same moment added it first.
                await session.rollback()
    return len(BUNDLED_SETS)
