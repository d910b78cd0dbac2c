"""A fail-fast check of a request body's shape, before pydantic or FastAPI validate it.

pydantic reports every error of a body, and each error holds its input: an object with
missing fields is converted once per missing field, so a 2 MB object of unknown keys took
pydantic 680 MiB and FastAPI's handler, which validates it again, as much more. The check
here stops at the first problem and keeps nothing: msgspec decodes the body into a mirror of
the body model that holds its field names, its list bounds and, per field, the longest string
the field can take (a Literal's longest value, a string's `max_length`, and at least
SHORT_STRING); any other value must be a JSON number, `true`, `false` or `null`. An unknown
or missing field, a list or string over its bound, or a nested array or object where a
field's value belongs fails at once.

Every body the model accepts passes, so the check decides nothing pydantic would not: it
only answers bad bodies sooner, naming the field as pydantic does (`loc`, `msg`, `type`).
A body that passes holds the model's fields and scalars of bounded size, nothing else, and
pydantic's errors on it stay proportionate (at most one per field, none holding an object).

Models with other shapes (dicts, unbounded lists or strings, nested lists) are refused when
the check is built: the check could not bound them, and would let them through unchecked.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import msgspec
from pydantic import BaseModel
from pydantic.fields import FieldInfo

# An error as FastAPI's RequestValidationError lists them (without the input, never echoed).
BodyError = dict[str, Any]

_SCALAR_TYPES = (str, int, float, bool, type(None))
# Strings this short pass whatever the field (a typo in a category, "12" for a number), so
# that pydantic gives its own answer ("Input should be a valid number"); longer ones must fit.
SHORT_STRING = 64
# msgspec's messages end with the path of the failing value: "... - at `$.applications[3]`".
_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.(?P<field>[A-Za-z_][A-Za-z0-9_]*)|\[(?P<index>\d+)\]")
_BYTE = re.compile(r"\(byte (\d+)\)")


class Translation(NamedTuple):
    pattern: re.Pattern[str]  # a msgspec message
    type: str  # pydantic's error type for it
    msg: str  # pydantic's wording, formatted with the pattern's groups
    names_field: bool = False  # the group is a field name, which goes into the location


_TRANSLATIONS = [
    Translation(
        re.compile(r"Object contains unknown field `(.*)`", re.DOTALL),
        "extra_forbidden",
        "Extra inputs are not permitted",
        names_field=True,
    ),
    Translation(
        re.compile(r"Object missing required field `(.*)`", re.DOTALL),
        "missing",
        "Field required",
        names_field=True,
    ),
    Translation(
        re.compile(r"Expected `array` of length <= (\d+)"),
        "too_long",
        "List should have at most {} items",
    ),
    Translation(
        re.compile(r"Expected `str` of length <= (\d+)"),
        "string_too_long",
        "String should have at most {} characters",
    ),
    Translation(
        re.compile(r"Expected `object`, got `\w+`"), "model_type", "Input should be an object"
    ),
    Translation(
        re.compile(r"Expected `array`, got `\w+`"), "list_type", "Input should be a valid list"
    ),
    Translation(
        re.compile(r"Expected `[^`]*`, got `(?:array|object)`"),
        "scalar_type",
        "Input should be a string, a number, a boolean or null",
    ),
    Translation(
        re.compile(r"Number out of range"), "finite_number", "Input should be a finite number"
    ),
]


class BodyShapeError(Exception):
    """The body fails the check; `error` says where and why."""

    def __init__(self, error: BodyError) -> None:
        super().__init__(error["msg"])
        self.error = error


class BodyGate:
    """The shape check of one body model: `check(body)` raises BodyShapeError or returns."""

    def __init__(self, model: type[BaseModel]) -> None:
        self._decoder = msgspec.json.Decoder(_mirror(model))

    def check(self, body: bytes) -> None:
        try:
            self._decoder.decode(body)
        except msgspec.ValidationError as error:
            raise BodyShapeError(_validation_error(str(error))) from None
        except msgspec.DecodeError as error:
            raise BodyShapeError(_decode_error(str(error))) from None
        except UnicodeDecodeError:
            raise BodyShapeError(
                {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error: not UTF-8"}
            ) from None


def _mirror(model: type[BaseModel]) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for name, field in model.model_fields.items():
        if field.alias not in (None, name) or field.validation_alias not in (None, name):
            raise TypeError(f"{model.__name__}.{name}: aliases are not supported")
        shape = _shape(model, name, field)
        if field.is_required():
            fields.append((name, shape))
        else:
            fields.append((name, shape | msgspec.UnsetType, msgspec.UNSET))
    return msgspec.defstruct(
        f"{model.__name__}Shape",
        fields,
        forbid_unknown_fields=model.model_config.get("extra") == "forbid",
    )


def _shape(model: type[BaseModel], name: str, field: FieldInfo) -> Any:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _mirror(annotation)
    if get_origin(annotation) is list:
        [item] = get_args(annotation)
        longest = _max_length(field)
        if not (isinstance(item, type) and issubclass(item, BaseModel)) or longest is None:
            raise TypeError(f"{model.__name__}.{name}: only lists of models with a max_length")
        return Annotated[list[_mirror(item)], msgspec.Meta(max_length=longest)]  # type: ignore[misc]
    longest = _longest_string(annotation, field)
    if longest is None:
        raise TypeError(f"{model.__name__}.{name}: {annotation} cannot be bounded")
    # Numbers decode as float: any integer literal is one (pydantic judges its range).
    string = Annotated[str, msgspec.Meta(max_length=max(longest, SHORT_STRING))]
    return Union[string, float, bool, None]  # noqa: UP007 - built at run time


def _longest_string(annotation: Any, field: FieldInfo) -> int | None:
    """The longest string a scalar field accepts (0 when it takes none); None if unbounded."""
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        if not all(isinstance(value, _SCALAR_TYPES) for value in values):
            return None
        return max((len(value) for value in values if isinstance(value, str)), default=0)
    if get_origin(annotation) in (Union, types.UnionType):
        bounds = [_longest_string(member, field) for member in get_args(annotation)]
        return None if None in bounds else max(bound for bound in bounds if bound is not None)
    if annotation is str:
        return _max_length(field)
    if annotation in (int, float, bool, type(None)):
        return 0
    return None


def _max_length(field: FieldInfo) -> int | None:
    """The field's `max_length` constraint (pydantic keeps it as annotated_types.MaxLen)."""
    lengths = [getattr(m, "max_length", None) for m in field.metadata]
    bounds = [length for length in lengths if isinstance(length, int)]
    return min(bounds) if bounds else None


def _validation_error(text: str) -> BodyError:
    match = _PATH.match(text)
    assert match is not None  # the pattern matches any text
    message, path = match["message"], match["path"] or ""
    loc: list[str | int] = ["body"]
    for part in _PATH_PART.finditer(path):
        loc.append(part["field"] if part["field"] is not None else int(part["index"]))
    return {**_described(message, loc), "loc": loc}


def _described(message: str, loc: list[str | int]) -> BodyError:
    """pydantic's type and wording for msgspec's message, where one says the same."""
    for translation in _TRANSLATIONS:
        if found := translation.pattern.fullmatch(message):
            if translation.names_field:
                loc.append(found[1])
                return {"type": translation.type, "msg": translation.msg}
            return {"type": translation.type, "msg": translation.msg.format(*found.groups())}
    return {"type": "value_error", "msg": message}


def _decode_error(text: str) -> BodyError:
    at = _BYTE.search(text)
    loc: list[str | int] = ["body", int(at[1])] if at else ["body"]
    return {"type": "json_invalid", "loc": loc, "msg": f"JSON decode error: {text}"}
