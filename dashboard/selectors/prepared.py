"""Querysets of the hot paths compiled once per process, then run with each request's values.

On the checks every frame and every prediction makes (the deployment with the member's role and its label map; the
JWT's token), building and compiling the queryset cost Django about twice what the database spends answering it. A
PreparedQuery builds its queryset once per database with stand-in values, keeps the SQL and where each stand-in
landed among its parameters, then runs that SQL with the real values. Rows become objects through the queryset's own
compiler (its converters, its select_related populators, its annotations), so what `first` returns is what the
queryset's `.first()` would, in the same one statement.
"""
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: dict[str, list[int]]  # value name -> its positions among the params
    compiler: SQLCompiler
    init_list: list[str]
    model_fields: slice
    related_populators: list
    annotations: dict[str, int]


class PreparedQuery:
    """`build(**values)` returns the queryset (one model, at most one row wanted); `fields` names the model field each
    value is compared with, which prepares it for the database as the ORM would."""

    def __init__(self, build: Callable[..., QuerySet], *, using: str = DEFAULT_DB_ALIAS, **fields: Field):
        self._build = build
        self._using = using
        self._fields = fields
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def first(self, **values) -> Model | None:
        alias = self._using
        compiled = self._compiled or self._compile()
        connection = connections[alias]
        params = list(compiled.params)
        for name in self._fields:
            prepared = self._prepared(name, values[name], connection)
            for position in compiled.slots[name]:
                params[position] = prepared
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchmany(1)
        for row in compiled.compiler.results_iter([rows]):
            found = compiled.compiler.klass_info["model"].from_db(alias, compiled.init_list, row[compiled.model_fields])
            for populator in compiled.related_populators:
                populator.populate(row, found)
            for name, position in compiled.annotations.items():
                setattr(found, name, row[position])
            return found
        return None

    def _prepared(self, name: str, value, connection):
        field = self._fields[name]
        return field.get_db_prep_value(field.get_prep_value(value), connection, prepared=True)

    def _stand_ins(self) -> dict:
        # Values no real row holds, so that each is found only where the queryset put it.
        return {name: uuid.uuid4() if getattr(field, "target_field", field).get_internal_type() == "UUIDField"
                else -(uuid.uuid4().int % 2**62) - 7 for name, field in self._fields.items()}

    def _compile(self) -> _Compiled:
        alias = self._using
        with self._lock:
            if self._compiled is not None:
                return self._compiled
            stand_ins = self._stand_ins()
            queryset = self._build(**stand_ins)
            compiler = queryset.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            connection = connections[alias]
            slots = {name: [position for position, param in enumerate(params)
                            if param == self._prepared(name, value, connection)]
                     for name, value in stand_ins.items()}
            unused = [name for name, positions in slots.items() if not positions]
            if unused:
                raise ValueError(f"the queryset does not use {', '.join(unused)}")
            klass_info, select = compiler.klass_info, compiler.select
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            compiled = _Compiled(
                sql=sql, params=tuple(params), slots=slots, compiler=compiler,
                init_list=[column[0].target.attname for column in select[start:end]],
                model_fields=slice(start, end), related_populators=get_related_populators(klass_info, select, alias),
                annotations=dict(compiler.annotation_col_map or {}),
            )
            self._compiled = compiled
            return compiled
