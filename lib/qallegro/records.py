"""Frozen, typed records of what runs write and what settings say, read like the JSON mappings they are stored as.

A record is a frozen dataclass: its fields (with their defaults) are the one place that says what the record
holds. `from_json(data, source)` validates once, when the file or preset is read (missing keys, wrong types, and
unknown keys where the format has none; the error names `source` and the key). Records are `Mapping`s too
(`rec["val_f_mae"]`, `rec.get("test")`, `"transfer" in rec`), so callers written for the dicts keep working, and
`to_json()` gives back the same JSON object (optional fields left out when None, as the writers always did).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")


class RecordError(ValueError):
    """A record file or preset that does not have the expected keys and types; names the source and the key."""


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and issubclass(hint, Record):
        return isinstance(value, Mapping)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    base = origin or hint
    if base in (Mapping, dict):
        return isinstance(value, Mapping)
    if base in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, base)


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class Record(Mapping[str, Any]):
    """Base of the frozen records (subclasses are `@dataclass(frozen=True)`).

    `OPTIONAL` fields are left out of the mapping and of the JSON when None; `OPEN` records keep unknown keys in
    `extra` (a preset may carry keys for other code), closed ones reject them.
    """

    OPTIONAL: ClassVar[tuple[str, ...]] = ()
    OPEN: ClassVar[bool] = False

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Any], source: str) -> R:
        """The record of `data` (read from `source`), with defaults filled in; `RecordError` on a bad key."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise RecordError(f"{source}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        unknown = sorted(set(data) - set(fields))
        if unknown and not cls.OPEN:
            raise RecordError(f"{source}: unknown key(s) {unknown}; known: {', '.join(fields)}")
        values: dict[str, Any] = {}
        for name, f in fields.items():
            if name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise RecordError(f"{source}: missing key {name!r}")
                continue
            value, hint = data[name], hints[name]
            if not _matches(value, hint):
                shown = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
                raise RecordError(f"{source}: {name}: expected {shown}, got {value!r}")
            sub = next((h for h in (hint, *typing.get_args(hint)) if isinstance(h, type) and issubclass(h, Record)),
                       None)
            values[name] = sub.from_json(value, f"{source}: {name}") if sub and value is not None else value
        if cls.OPEN:
            values["extra"] = {k: data[k] for k in unknown}
        return cls(**values)

    def _keys(self) -> list[str]:
        names = [f.name for f in dataclasses.fields(self) if f.name != "extra"]  # type: ignore[arg-type]
        keys = [n for n in names if not (n in self.OPTIONAL and getattr(self, n) is None)]
        return keys + list(getattr(self, "extra", {}))

    def __getitem__(self, key: str) -> Any:
        if key in self._keys():
            extra = getattr(self, "extra", {})
            return extra[key] if key in extra else getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this record (the on-disk format)."""
        return {k: _plain(self[k]) for k in self._keys()}
