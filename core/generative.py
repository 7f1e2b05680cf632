"""Generative models: which models are, and what their generation requests look like.

A generative model on Triton (the vLLM and TensorRT-LLM backends, a decoupled python model) is
decoupled: a request gets a stream of responses, one per token or group of tokens. tsweep
measures such a model only through its token stream (``streaming``, docs/generative-models.md),
and refuses to stream a model that is not decoupled: it answers once, so it has no tokens to time.

The request follows the convention those backends share, which Triton's generate extension
maps onto inputs by name: the prompt goes into the model's text input (``text_input``, else
its only BYTES input), the requested output length into ``max_tokens`` if the model has that
input, and ``stream: true`` if it has a ``stream`` input (vLLM's and TensorRT-LLM's switch).
A model without ``max_tokens`` cannot be told an output length: the measurement reports the
lengths it produced against those asked for (:func:`tsweep.tokens.summarize`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from tsweep.errors import UsageError
from tsweep.modelconfig import model_config_pb2
from tsweep import prompts
from tsweep.prompts import Prompt
from tsweep.records import LoadSettings

TEXT_INPUT, MAX_TOKENS_INPUT, STREAM_INPUT = "text_input", "max_tokens", "stream"


def is_decoupled(config: Any) -> bool:
    """True for a model whose requests may get any number of responses."""
    return bool(config.model_transaction_policy.decoupled)


@dataclass(frozen=True)
class RequestFields:
    """The inputs a generation request fills: the prompt's, and those of the optional controls."""

    text: str
    max_tokens: Optional[str]
    stream: Optional[str]

    def body(self, prompt: Prompt) -> dict:
        """One request's JSON body for generate_stream (the generate extension's form)."""
        fields = {self.text: prompt.text}
        if self.max_tokens:
            fields[self.max_tokens] = prompt.max_tokens
        if self.stream:
            fields[self.stream] = True
        return fields


def request_fields(name: str, config: Any) -> RequestFields:
    """Which of ``name``'s inputs take the prompt and the controls; UsageError if none can
    take a prompt."""
    inputs = {i.name: i for i in config.input}
    strings = [i.name for i in config.input if i.data_type == model_config_pb2.TYPE_STRING]
    text = TEXT_INPUT if TEXT_INPUT in strings else (strings[0] if len(strings) == 1 else None)
    if text is None:
        found = ", ".join(inputs) or "none"
        raise UsageError(f"model {name!r} has no input for a prompt: streaming needs a BYTES input named {TEXT_INPUT!r} (or a single BYTES input); its inputs are {found}")
    return RequestFields(text, MAX_TOKENS_INPUT if MAX_TOKENS_INPUT in inputs else None, STREAM_INPUT if STREAM_INPUT in inputs else None)


def check(name: str, config: Any, load: LoadSettings) -> None:
    """A model's config fits how it is to be measured: streaming a decoupled model with a
    prompt input, or plain requests to a model that answers once; a streamed model's prompts
    are made (a prompt file read: a bad line stops the run here, with its number)."""
    if load.streaming and not is_decoupled(config):
        raise UsageError(
            f"model {name!r} is not decoupled (model_transaction_policy decoupled: true), so it has no token stream: "
            "remove streaming (and model_type: LLM) for it, or profile a decoupled model"
        )
    if not load.streaming and is_decoupled(config):
        raise UsageError(f"model {name!r} is decoupled (it answers with a stream): set streaming: true (or model_type: LLM) to measure its tokens")
    if load.streaming:
        request_fields(name, config)
        prompts.make(load.prompts)
        if load.shared_memory != "none":
            raise UsageError("shared_memory and streaming cannot be combined: generation requests carry their prompts as JSON; remove shared_memory")


def json_bodies(fields: RequestFields, asked: Sequence[Prompt]) -> List[bytes]:
    """Every prompt's request body, encoded once per point."""
    return [json.dumps(fields.body(p)).encode() for p in asked]
