"""Inserting many rows at once, for the stages that run per message."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def rows_insert_new(objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (all of one model), leaving out rows that conflict
    with a unique constraint.

    One statement, prepared once and sent for every row together (psycopg
    pipelines them): the secure stage runs it for every batch, and building a
    multi-row INSERT through the ORM cost more than the database took to run
    it. Fields are prepared as ``bulk_create`` prepares them (``auto_now_add``
    included); the rows' ids are not read back. Runs in the caller's
    transaction.
    """
    if not objs:
        return
    meta = objs[0]._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "
        f"VALUES ({values}) ON CONFLICT DO NOTHING"
    )
    params = [
        [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
