"""Queries whose SQL is built once and run many times: the lookups every idle poll makes.

peewee builds a query's SQL anew each time it runs, walking its tree of nodes: for a contact by id that
costs about 250 µs, against 20 µs for SQLite to answer it. An idle daemon runs a handful of such lookups
every poll, and building them was most of its store time. A query written here with a `Slot` where a value
goes is built once per store; each run only fills the slots. The SQL is still peewee's, so it fits
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from peewee import ColumnBase, Context, Database, Model


class ModelQuery(Protocol):
    """A select, insert or update of one model, as peewee builds it."""

    model: type[Model]

    def sql(self) -> tuple[str, list[Any]]: ...


class Slot(ColumnBase):
    """A value given when the query runs, not when it is built; it goes through the compared field's
    conversion, as a value written in place would."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def __sql__(self, ctx: Context) -> Context:
        # Kept unconverted now (converter=False): the field's conversion is applied to the value when it comes.
        return ctx.value(_Hole(self.name, ctx.state.converter), converter=False)


@dataclass(frozen=True)
class _Hole:
    name: str
    converter: Callable[[Any], Any] | None


class Prepared:
    """One query's SQL and parameters, with a `_Hole` for each slot."""

    def __init__(self, query: ModelQuery):
        self.model: type[Model] = query.model
        self.db: Database = query.model._meta.database
        self.sql, self._params = query.sql()
        self.slots = frozenset(p.name for p in self._params if isinstance(p, _Hole))

    def params(self, values: dict[str, Any]) -> list[Any]:
        if values.keys() != self.slots:
            raise TypeError(f"slots {sorted(self.slots)} given {sorted(values)}")
        return [_fill(p, values) if isinstance(p, _Hole) else p for p in self._params]

    def rows(self, **values: Any) -> list[Any]:
        """The rows as the query's model, each column converted as a built query would."""
        return list(self.model.raw(self.sql, *self.params(values)))

    def first(self, **values: Any) -> Any | None:
        found = self.rows(**values)
        return found[0] if found else None

    def tuples(self, **values: Any) -> list[tuple[Any, ...]]:
        """The rows as the database returns them, unconverted."""
        return list(self.db.execute_sql(self.sql, self.params(values)).fetchall())

    def execute(self, **values: Any) -> int:
        """Run a write; returns how many rows it changed."""
        return int(self.db.execute_sql(self.sql, self.params(values)).rowcount)


def _fill(hole: _Hole, values: dict[str, Any]) -> Any:
    value = values[hole.name]
    return hole.converter(value) if hole.converter is not None else value


class PreparedQueries:
    """A store's prepared queries, each built at its first run."""

    def __init__(self) -> None:
        self._built: dict[str, Prepared] = {}

    def __call__(self, name: str, build: Callable[[], ModelQuery]) -> Prepared:
        found = self._built.get(name)
        if found is None:
            # Two threads may both build it the first time: the same SQL, so either copy serves.
            found = self._built[name] = Prepared(build())
        return found
