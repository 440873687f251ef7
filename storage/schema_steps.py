"""The schema steps in order: frozen DDL per version, per engine.

A step must mean the same thing forever, whatever the models look like later, so it holds
DDL rather than calling `Model.create_table()`; every statement is idempotent, so a step cut
short by a crash simply runs again. `storage.schema.migrate` applies them in order; the DDL
itself is spelled by `storage.schema_ddl`.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee

from storage.schema_v1_to_3 import step_1, step_2, step_3
from storage.schema_v4_to_6 import step_4, step_5, step_6
from storage.schema_v7 import step_7
from storage.schema_v8 import step_8

STEPS: tuple[tuple[int, Callable[[peewee.Database], None]], ...] = (
    (1, step_1),
    (2, step_2),
    (3, step_3),
    (4, step_4),
    (5, step_5),
    (6, step_6),
    (7, step_7),
    (8, step_8),
)
