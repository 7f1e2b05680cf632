"""One rule for every config key's value: its type, its bounds, and the line that says why not.

tsweep's own keys (:class:`tsweep.config.Config` fields) and the keys plugins declare
(:class:`ConfigKey`, through the ``tsweep_config_keys`` hook) are both described by a
:class:`KeyRule` and go through :func:`coerce` and :func:`check`, so a plugin's key is
refused with the same words as tsweep's own.
"""
from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from tsweep.errors import UsageError

#: Value kinds beyond the plain type: bounds, and how lists are written.
KINDS = ("", "positive", "count", "fraction", "list_str", "list_int", "list_float", "list_shape", "list_text")
#: Plain types a key's value can have (``Dict`` is a mapping, given in the file only).
TYPES = ("str", "int", "float", "bool", "Dict")


@dataclass(frozen=True)
class KeyRule:
    """What a key's value must be: ``type`` (one of :data:`TYPES`, ignored for list kinds),
    ``kind`` (one of :data:`KINDS`), ``choices`` (allowed strings, empty for any) and
    whether ``None`` (not set) is allowed."""

    name: str
    type: str
    kind: str = ""
    choices: Tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class ConfigKey:
    """A config key a plugin adds, declared through the ``tsweep_config_keys`` hook.

    Users set it in the YAML file (``-f``) like any key; tsweep validates it with the same
    rules as its own (:func:`coerce`, :func:`check`), lists it in ``tsweep plugins`` and in
    the generated config reference, and hands its value to the plugin's hooks in their
    ``options`` argument (``options[name]``; the default when the user did not set it).

    ``name`` should start with the plugin's own prefix (it must not be one of tsweep's keys
    or another plugin's). ``default`` gives the type unless ``type`` says it (``str``,
    ``int``, ``float``, ``bool``, ``Dict``; a list default means a list of strings unless
    ``kind`` is ``list_int`` or ``list_float``). ``kind`` adds a bound (``positive``,
    ``count``, ``fraction``); ``choices`` lists the allowed strings; ``commands`` the
    subcommands it matters to, for the reference.
    """

    name: str
    default: Any
    help: str
    type: str = ""
    kind: str = ""
    choices: Tuple[str, ...] = ()
    commands: Tuple[str, ...] = ("profile",)
    owner: str = field(default="", compare=False)  # the declaring plugin, filled in by the core

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or keyword.iskeyword(self.name) or self.name != self.name.lower():
            raise ValueError(f"config key name {self.name!r} must be a lower-case Python identifier")
        if self.kind not in KINDS:
            raise ValueError(f"config key {self.name!r}: kind must be one of {', '.join(k for k in KINDS if k)}")
        if self.type and self.type not in TYPES:
            raise ValueError(f"config key {self.name!r}: type must be one of {', '.join(TYPES)}")
        check(self.rule(), coerce(self.rule(), self.default) if self.default is not None else None)

    def rule(self) -> KeyRule:
        if self.type:
            declared = self.type
        elif isinstance(self.default, (list, tuple)):
            declared = "str"
        else:
            declared = {bool: "bool", int: "int", float: "float", dict: "Dict"}.get(type(self.default), "str")
        kind = self.kind or ("list_str" if isinstance(self.default, (list, tuple)) else "")
        return KeyRule(self.name, declared, kind, tuple(self.choices), optional=self.default is None)

    def value(self) -> Any:
        """The default, in the form a user's value takes after :func:`coerce`."""
        return None if self.default is None else coerce(self.rule(), self.default)


def split(value: Any) -> list:
    """A list from a list, or from a comma-separated string (Model Analyzer accepts both)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("an integer")
    return int(value)


def as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a number")
    return float(value)


def expand_range(name: str, value: dict, convert) -> tuple:
    """Model Analyzer's ``{start, stop, step}`` form: start, start + step, ... up to stop
    (included when it falls on a step); step defaults to 1."""
    if not {"start", "stop"} <= set(value) <= {"start", "stop", "step"}:
        raise UsageError(f"config key {name!r}: a range is {{start, stop}} with an optional step, got keys {sorted(map(str, value))}")
    start, stop, step = convert(value["start"]), convert(value["stop"]), convert(value.get("step", 1))
    if step <= 0 or start > stop:
        raise UsageError(f"config key {name!r}: a range needs start <= stop and a step > 0, got {value!r}")
    count = int((stop - start) / step + 1e-9) + 1
    return tuple(start + i * step for i in range(count))


def coerce(rule: KeyRule, value: Any) -> Any:
    """Turn a YAML or CLI value into the key's type, or say exactly what is wrong."""
    kind, target = rule.kind, rule.type
    if value is None and rule.optional:
        return None
    try:
        if kind == "list_str":
            if isinstance(value, dict):
                raise ValueError("a list of names")
            return tuple(str(v) for v in split(value))
        if kind in ("list_int", "list_float") and isinstance(value, dict):
            return expand_range(rule.name, value, as_int if kind == "list_int" else as_float)
        if kind == "list_int":
            return tuple(as_int(v) for v in split(value))
        if kind == "list_float":
            return tuple(as_float(v) for v in split(value))
        if kind == "list_text":  # free text may hold commas and spaces: one string is one item
            if isinstance(value, dict):
                raise ValueError("a list of strings")
            return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)
        if kind == "list_shape":  # NAME:d1,d2 holds commas: several are space-separated
            return tuple(str(v) for v in (value.split() if isinstance(value, str) else split(value)))
        if target == "Dict":
            if not isinstance(value, dict):
                raise ValueError("a mapping")
            return dict(value)
        if target == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "on"):
                return True
            if str(value).lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError("true or false")
        if target == "float":
            return as_float(value)
        if target == "int":
            return as_int(value)
        if target == "str":
            if isinstance(value, (dict, list)):
                raise ValueError("a string")
            return str(value)
    except (TypeError, ValueError) as exc:
        expected = str(exc) if str(exc).startswith(("a ", "true")) else _expected(target, kind)
        raise UsageError(f"config key {rule.name!r} must be {expected}, got {value!r}") from None
    return value


def check(rule: KeyRule, value: Any) -> None:
    """The key's bounds and choices; ``None`` (not set) passes for an optional key."""
    name, kind = rule.name, rule.kind
    if value is None:
        return
    if kind == "positive" and value <= 0:
        raise UsageError(f"config key {name!r} must be greater than 0, got {value!r}")
    if kind == "fraction" and not 0 <= value <= 1:
        raise UsageError(f"config key {name!r} must be between 0 and 1, got {value!r}")
    if kind == "count" and value < 0:
        raise UsageError(f"config key {name!r} must be 0 or more, got {value!r}")
    if kind in ("list_int", "list_float") and any(v <= 0 for v in value):
        raise UsageError(f"config key {name!r} must hold positive numbers, got {list(value)!r}")
    if rule.choices and value not in rule.choices:
        raise UsageError(f"config key {name!r} must be one of {', '.join(map(str, rule.choices))}, got {value!r}")


def _expected(target: str, kind: str) -> str:
    if kind == "list_int":
        return "a list of integers"
    if kind == "list_float":
        return "a list of numbers"
    return {"int": "an integer", "bool": "true or false", "Dict": "a mapping"}.get(target, "a number" if target == "float" else "a " + target)


def type_name(annotation: Optional[str]) -> str:
    """A Config field's type annotation ('Optional[int]', 'Tuple[int, ...]') as a rule type."""
    name = str(annotation or "")
    if name.startswith("Optional["):
        name = name[len("Optional["):-1]
    if name.startswith("Dict"):
        return "Dict"
    return name if name in TYPES else "str"
