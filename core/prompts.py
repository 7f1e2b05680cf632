"""The prompts of a generative model's requests: synthetic, or from a user's JSONL file.

A token is a word here (whitespace-separated), which is how the example engine counts them; a
real model's tokenizer counts a text differently, so for a real model ``input_tokens`` is the
prompt's length in words, a stand-in for its length in tokens.

Synthetic prompts draw each prompt's input tokens and requested output tokens from normal
distributions (mean, stddev, rounded, at least 1) with a fixed seed, so two configs (and two
runs) see the same prompts. A prompt file holds one JSON object per line: ``{"text": "..."}``
or ``{"input_tokens": n}`` (a synthetic text of n words), with an optional ``"max_tokens"``
(else the output-token distribution gives one); blank lines are skipped. A bad line stops the
run with the file and line number.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from tsweep.errors import UsageError
from tsweep.records import PromptSettings

#: Words synthetic prompts are made of (any text would do: the example engine counts words).
VOCABULARY = tuple("the a model server token stream engine prompt batch request answer time first next load step".split())


@dataclass(frozen=True)
class Prompt:
    """One generation request's content: the text, its length in tokens (words) and the
    output length asked for."""

    text: str
    input_tokens: int
    max_tokens: int


def make(settings: PromptSettings) -> List[Prompt]:
    """The prompts ``settings`` describe (the file's, else synthetic ones); the same every call."""
    rng = np.random.default_rng(settings.seed)
    if settings.file:
        return read_file(Path(settings.file), settings, rng)
    return [_synthetic(_draw(rng, settings.input_tokens_mean, settings.input_tokens_stddev), _output_length(rng, settings), rng) for _ in range(settings.count)]


def read_file(path: Path, settings: PromptSettings, rng: Optional[np.random.Generator] = None) -> List[Prompt]:
    """The prompts of a JSONL file; UsageError naming the file and line of the first bad line."""
    rng = rng if rng is not None else np.random.default_rng(settings.seed)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read prompt file {path}: {getattr(exc, 'strerror', None) or exc}; check prompt_file") from None
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        found.append(_from_line(line, f"{path}:{number}", settings, rng))
    if not found:
        raise UsageError(f"prompt file {path} holds no prompts: write one JSON object per line, e.g. {{\"text\": \"...\", \"max_tokens\": 16}}")
    return found


def _from_line(line: str, where: str, settings: PromptSettings, rng: np.random.Generator) -> Prompt:
    fix = 'each line must be a JSON object with "text" (a string) or "input_tokens" (a positive integer), and optionally "max_tokens" (a positive integer)'
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"prompt file {where}: not JSON ({exc.msg}); {fix}") from None
    if not isinstance(entry, dict) or ("text" in entry) == ("input_tokens" in entry) or set(entry) - {"text", "input_tokens", "max_tokens"}:
        raise UsageError(f"prompt file {where}: does not fit ({line.strip()[:60]}); {fix}")
    max_tokens = entry.get("max_tokens", None)
    if max_tokens is not None and not _positive_int(max_tokens):
        raise UsageError(f"prompt file {where}: max_tokens {max_tokens!r} is not a positive integer; {fix}")
    max_tokens = int(max_tokens) if max_tokens is not None else _output_length(rng, settings)
    if "text" in entry:
        if not isinstance(entry["text"], str) or not entry["text"].strip():
            raise UsageError(f"prompt file {where}: text must be a non-empty string; {fix}")
        return Prompt(entry["text"], len(entry["text"].split()), max_tokens)
    if not _positive_int(entry["input_tokens"]):
        raise UsageError(f"prompt file {where}: input_tokens {entry['input_tokens']!r} is not a positive integer; {fix}")
    return _synthetic(int(entry["input_tokens"]), max_tokens, rng)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _draw(rng: np.random.Generator, mean: float, stddev: float) -> int:
    return max(1, int(round(rng.normal(mean, stddev)))) if stddev > 0 else max(1, int(round(mean)))


def _output_length(rng: np.random.Generator, settings: PromptSettings) -> int:
    return _draw(rng, settings.output_tokens_mean, settings.output_tokens_stddev)


def _synthetic(input_tokens: int, max_tokens: int, rng: np.random.Generator) -> Prompt:
    words = rng.choice(len(VOCABULARY), size=input_tokens)
    return Prompt(" ".join(VOCABULARY[i] for i in words), input_tokens, max_tokens)
