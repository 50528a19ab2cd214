"""Request-model fields whose absence is not a value.

A PATCH field or a mutually exclusive input (``contacts`` or ``csv``) must tell
"not given" from every value of its type, and an explicit ``null`` must be
refused rather than read as "not given". Such a field keeps its plain type and
defaults to ``ABSENT``: None at run time, so ``model_fields_set`` and
``is None`` checks work, while ``null`` from a client still fails validation.
"""

from __future__ import annotations

from typing import Any

#: the default of a field whose None only means "not given". Typed Any so a
#: non-optional field can carry it: that is the point, the type stays strict.
ABSENT: Any = None


def no_default(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of an ``ABSENT`` field: the schema must not offer null."""
    schema.pop("default", None)


def absent_field(**constraints: Any) -> Any:
    """``Field(default=ABSENT, ...)`` whose schema does not offer null."""
    from pydantic import Field

    return Field(default=ABSENT, json_schema_extra=no_default, **constraints)
