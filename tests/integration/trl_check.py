"""Load the playground's training exports with `datasets` and check them with TRL itself.

Run with the vLLM virtualenv's Python (it has torch, TRL and datasets; the app's has no torch):

    .venv-vllm/bin/python tests/integration/trl_check.py EXPORTS_DIR TINY_CHAT_MODEL_DIR

EXPORTS_DIR holds the files as downloaded: {dpo,kto,reward}-{standard,conversational}.jsonl and
the same names ending .parquet. Prints one JSON object of findings on stdout; the pytest side
(test_trl_exports.py) asserts on it. Nothing here converts the data: every dataset goes to TRL
exactly as `load_dataset` returns it.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import trl
from datasets import Dataset, load_dataset
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer, RewardConfig, RewardTrainer
from trl.data_utils import (
    is_conversational,
    maybe_apply_chat_template,
    maybe_extract_prompt,
    maybe_unpair_preference_dataset,
)

KINDS = ("dpo", "kto", "reward")
FORMS = ("standard", "conversational")
EXTENSIONS = ("jsonl", "parquet")


def load(directory: Path, kind: str, form: str, extension: str) -> Dataset:
    """One downloaded export, through `datasets` as a user would load it."""
    builder = "json" if extension == "jsonl" else "parquet"
    path = directory / f"{kind}-{form}.{extension}"
    return load_dataset(builder, data_files=str(path), split="train", cache_dir=str(directory))


def helpers(dataset: Dataset, kind: str, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """What TRL's dataset helpers make of the first record."""
    row = dataset[0]
    extracted = maybe_extract_prompt(row)
    templated = maybe_apply_chat_template(extracted, tokenizer)
    text_columns = ("chosen", "rejected") if kind != "kto" else ("completion",)
    found: dict[str, Any] = {
        "conversational": is_conversational(row),
        "prompt_after_extract": extracted["prompt"] is not None and len(extracted["prompt"]) > 0,
        "templated_are_strings": all(isinstance(templated[c], str) for c in text_columns),
        "templated": {c: templated[c] for c in ("prompt", *text_columns)},
    }
    if kind == "dpo":
        unpaired = maybe_unpair_preference_dataset(dataset)
        found["unpaired_columns"] = sorted(unpaired.column_names)
        found["unpaired"] = sorted(
            [json.dumps(r["completion"], sort_keys=True), r["label"]] for r in unpaired
        )
    if kind == "kto":
        found["label_types"] = sorted({type(label).__name__ for label in dataset["label"]})
        found["kto"] = sorted(
            [json.dumps(r["completion"], sort_keys=True), r["label"]] for r in dataset
        )
    return found


def common_args(output_dir: str) -> dict[str, Any]:
    """One optimiser step on the CPU, nothing saved or reported."""
    return {
        "output_dir": output_dir,
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-4,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "max_length": 256,
    }


class Collect(logging.Handler):
    """TRL's logged warnings (e.g. a prompt whose tokens are not a prefix of prompt + answer)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:300])


def train(kind: str, dataset: Dataset, model_dir: Path) -> dict[str, Any]:
    """One training step of the trainer TRL documents for this kind, on the dataset as loaded."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    logged = Collect()
    logging.getLogger("trl").addHandler(logged)
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = common_args(out)
        if kind == "reward":
            model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
            model.config.pad_token_id = tokenizer.pad_token_id
            trainer: Any = RewardTrainer(
                model=model,
                args=RewardConfig(**args),
                train_dataset=dataset,
                processing_class=tokenizer,
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(model_dir)
            config, trainer_class = (
                (DPOConfig, DPOTrainer) if kind == "dpo" else (KTOConfig, KTOTrainer)
            )
            trainer = trainer_class(
                model=model,
                args=config(**args),
                train_dataset=dataset,
                processing_class=tokenizer,
            )
        result = trainer.train()
    logging.getLogger("trl").removeHandler(logged)
    loss = float(result.training_loss)
    return {
        "loss": loss,
        "finite": math.isfinite(loss),
        "steps": int(result.global_step),
        "warnings": sorted({str(w.message)[:200] for w in caught}),
        "logged": logged.messages,
    }


def main(argv: list[str]) -> int:
    directory, model_dir = Path(argv[1]), Path(argv[2])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    report: dict[str, Any] = {"trl": trl.__version__, "loaded": {}, "helpers": {}, "train": {}}
    for kind in KINDS:
        for form in FORMS:
            for extension in EXTENSIONS:
                dataset = load(directory, kind, form, extension)
                key = f"{kind}-{form}.{extension}"
                report["loaded"][key] = {
                    "columns": dataset.column_names,
                    "rows": len(dataset),
                    "label_dtype": getattr(dataset.features.get("label"), "dtype", None),
                }
                report["helpers"][key] = helpers(dataset, kind, tokenizer)
            # Training on the JSONL files is enough: the Parquet ones load to equal records.
            report["train"][f"{kind}-{form}"] = train(
                kind, load(directory, kind, form, "jsonl"), model_dir
            )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
