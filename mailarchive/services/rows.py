"""Inserting many rows at once, for the stages that run per message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection, models
from django.utils import timezone


def rows_insert_new(
    model: type[models.Model], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` of ``model``, leaving out rows that conflict with a
    unique constraint.

    Each row maps field attribute names (``space_id``, not ``space``) to
    values; every row names the same fields. The fields a row leaves out get
    their default, as ``bulk_create`` would give them (``auto_now_add``: now),
    prepared once for the whole batch. One statement, prepared once and sent
    for every row together (psycopg pipelines them): the secure stage runs it
    for every batch, and building model instances or a multi-row INSERT
    through the ORM cost more than the database took to run it. The rows' ids
    are not read back. Runs in the caller's transaction.
    """
    if not rows:
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    given = set(rows[0])
    unknown = given - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"{meta.label} has no fields {sorted(unknown)}")
    now = timezone.now()
    # Per column: the field whose value each row gives, or the prepared value
    # every row shares.
    plan: list[tuple[models.Field | None, Any]] = []
    for field in fields:
        if field.attname in given:
            plan.append((field, None))
        elif getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            plan.append((None, field.get_db_prep_save(now, connection)))
        else:
            plan.append((None, field.get_db_prep_save(field.get_default(), connection)))
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "
        f"VALUES ({values}) ON CONFLICT DO NOTHING"
    )
    params = [
        [
            shared
            if field is None
            else field.get_db_prep_save(row[field.attname], connection)
            for field, shared in plan
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
