"""Route options ValidatedJSONRoute's fast path cannot honour, refused when the route is made.

A valid request on that route skips FastAPI's response handling: the endpoint's model is
serialised as is, by its own serializer, into a plain JSON response. An option that changes
that output (include/exclude sets, dropping unset, default or None fields, another response
class, or aliases FastAPI would write) would then hold for invalid requests only; refusing it
at construction is better than answering differently by input.
"""

from __future__ import annotations

from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from pydantic import BaseModel

_FIELD_SETS = ("response_model_include", "response_model_exclude")
_FIELD_FILTERS = (
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
)


def _writes_aliases(model: type[BaseModel]) -> bool:
    """Whether the model's JSON differs by alias (nested models included)."""
    by_alias = model.model_json_schema(by_alias=True, mode="serialization")
    by_name = model.model_json_schema(by_alias=False, mode="serialization")
    return by_alias != by_name


def unsupported_options(route: APIRoute) -> list[str]:
    """The options set on `route` that the fast path would ignore, as `name=value`."""
    found = [f"{name}={getattr(route, name)!r}" for name in _FIELD_SETS if getattr(route, name)]
    found += [f"{name}=True" for name in _FIELD_FILTERS if getattr(route, name)]
    if not isinstance(route.response_class, DefaultPlaceholder):
        found.append(f"response_class={route.response_class.__name__}")
    model = route.response_model
    if (
        route.response_model_by_alias
        and isinstance(model, type)
        and issubclass(model, BaseModel)
        and _writes_aliases(model)
    ):
        found.append(f"response_model={model.__name__} with aliases (response_model_by_alias)")
    return found


def refuse_unsupported_options(route: APIRoute) -> None:
    """TypeError naming every option of `route` the fast path would ignore."""
    found = unsupported_options(route)
    if found:
        raise TypeError(
            f"{route.path}: ValidatedJSONRoute serialises the response model as is and cannot"
            f" honour {', '.join(found)}; use a plain APIRoute for this endpoint"
        )
