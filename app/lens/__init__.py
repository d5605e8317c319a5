"""The token lens: token-level views of generations and the base/chat token-shift analysis.

Pure logic and calls to model servers; routes, storage and templates live elsewhere.
"""

from app.lens.client import (
    RenderedPrompt,
    Tokenized,
    detokenize,
    max_model_len,
    rendered_chat_prompt,
    tokenize_messages,
    tokenize_text,
)
from app.lens.errors import (
    ContextTooLong,
    LensError,
    LensServerError,
    MalformedResponse,
    ServerUnavailable,
    VocabularyMismatch,
)
from app.lens.prefix import PrefixContinuation, continue_from_prefix
from app.lens.shift import (
    DEFAULT_TOP_K,
    Shift,
    ShiftAnalysis,
    TokenShift,
    classify,
    token_shift,
)
from app.lens.tokens import TokenInfo, generated_token_ids, token_view, without_stop_token
from app.lens.urial import UrialFormat, UrialPrompt, load_urial_format, urial_prompt
from app.lens.vocabulary import VocabularyCheck, same_vocabulary

__all__ = [
    "DEFAULT_TOP_K",
    "ContextTooLong",
    "LensError",
    "LensServerError",
    "MalformedResponse",
    "PrefixContinuation",
    "RenderedPrompt",
    "ServerUnavailable",
    "Shift",
    "ShiftAnalysis",
    "TokenInfo",
    "TokenShift",
    "Tokenized",
    "UrialFormat",
    "UrialPrompt",
    "VocabularyCheck",
    "VocabularyMismatch",
    "classify",
    "continue_from_prefix",
    "detokenize",
    "generated_token_ids",
    "load_urial_format",
    "max_model_len",
    "rendered_chat_prompt",
    "same_vocabulary",
    "token_shift",
    "token_view",
    "tokenize_messages",
    "tokenize_text",
    "urial_prompt",
    "without_stop_token",
]
