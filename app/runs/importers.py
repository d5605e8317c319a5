"""Read prompt set files (JSONL, CSV, a local Hugging Face dataset) into validated items.

Every problem names its line (or row) and what is wrong; a file with any problem is refused
whole, so nothing half-imported is ever stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.errors import InvalidInput
from app.runs.schemas import ItemInput

CSV_COLUMNS = ("prompt", "id", "system", "tags", "reference", "reference_type", "reference_value")


def parse_jsonl(text: str, max_items: int) -> list[ItemInput]:
    """Items from JSON Lines: one object per line; blank lines are skipped."""
    rows: list[tuple[int, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number}: not valid JSON ({exc.msg})") from exc
    return validate_rows(rows, max_items, "line")


def parse_csv(text: str, max_items: int) -> list[ItemInput]:
    """Items from CSV with a header row: prompt, and optionally id, system, tags (separated by
    `;`), reference (JSON) or reference_type and reference_value."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    if "prompt" not in header:
        raise InvalidInput("line 1: the CSV header has no 'prompt' column")
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown:
        raise InvalidInput(f"line 1: unknown columns {unknown} (known: {', '.join(CSV_COLUMNS)})")
    rows: list[tuple[int, object]] = []
    try:
        for record in reader:
            number = reader.line_num
            if None in record:
                raise InvalidInput(f"line {number}: more cells than the header has columns")
            if not any((v or "").strip() for v in record.values()):
                continue
            rows.append((number, _csv_item(number, record)))
    except csv.Error as exc:
        raise InvalidInput(f"line {reader.line_num}: {exc}") from exc
    return validate_rows(rows, max_items, "line")


def _csv_item(number: int, record: Mapping[str, str | None]) -> dict[str, Any]:
    """One CSV record as an item's fields."""
    item: dict[str, Any] = {"prompt": record.get("prompt") or ""}
    for name in ("id", "system"):
        if record.get(name):
            item[name] = record[name]
    if record.get("tags"):
        item["tags"] = [t.strip() for t in (record["tags"] or "").split(";") if t.strip()]
    if record.get("reference"):
        try:
            item["reference"] = json.loads(record["reference"] or "")
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number}: reference is not valid JSON ({exc.msg})") from exc
    elif record.get("reference_type") or record.get("reference_value"):
        item["reference"] = {
            "type": record.get("reference_type") or "",
            "value": record.get("reference_value") or "",
        }
    return item


def parse_file(path: Path, text: str, max_items: int) -> list[ItemInput]:
    """Items from a file's text, the format chosen by its name (.csv, else JSON Lines)."""
    if path.suffix.lower() == ".csv":
        return parse_csv(text, max_items)
    return parse_jsonl(text, max_items)


def parse_text(fmt: str, text: str, max_items: int) -> list[ItemInput]:
    """Items from text in a named format."""
    return parse_csv(text, max_items) if fmt == "csv" else parse_jsonl(text, max_items)


def validate_rows(
    rows: Iterable[tuple[int, object]], max_items: int, unit: str = "line"
) -> list[ItemInput]:
    """Validate numbered rows; the first problem is raised with its line number."""
    items: list[ItemInput] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        if len(items) >= max_items:
            raise InvalidInput(f"{unit} {number}: too many items (at most {max_items} per set)")
        if not isinstance(row, dict):
            raise InvalidInput(f"{unit} {number}: expected an object with a 'prompt'")
        try:
            item = ItemInput.model_validate(row)
        except ValidationError as exc:
            raise InvalidInput(f"{unit} {number}: {describe(exc)}") from exc
        if item.id is not None:
            if item.id in seen:
                raise InvalidInput(
                    f"{unit} {number}: id {item.id!r} was already used on {unit} {seen[item.id]}"
                )
            seen[item.id] = number
        items.append(item)
    if not items:
        raise InvalidInput("the set has no items")
    return items


def describe(exc: ValidationError) -> str:
    """Validation problems as one line, naming each field."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
        for e in exc.errors()
    )


def dataset_rows(path: str, split: str, column: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a local Hugging Face dataset as items: `column` is the prompt; the columns
    id, system, tags and reference are used when present."""
    try:
        import datasets
    except ImportError as exc:
        raise InvalidInput(
            "importing from a dataset needs the `datasets` package: pip install datasets"
        ) from exc
    try:
        loaded = datasets.load_from_disk(path)
    except (FileNotFoundError, ValueError):
        try:
            loaded = datasets.load_dataset(path, split=split)
        except Exception as exc:  # datasets raises many kinds; the message is what matters
            raise InvalidInput(f"cannot load dataset {path!r}: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise InvalidInput(f"the dataset has no split {split!r} (it has {list(loaded)})")
        loaded = loaded[split]
    if column not in loaded.column_names:
        raise InvalidInput(f"the dataset has no column {column!r} (it has {loaded.column_names})")
    for index, row in enumerate(loaded, start=1):
        item: dict[str, Any] = {"prompt": row[column]}
        for name in ("id", "system", "tags", "reference"):
            if name != column and row.get(name) is not None:
                item[name] = row[name]
        yield index, item
