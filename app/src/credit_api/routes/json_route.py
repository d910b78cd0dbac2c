"""FastAPI route classes for JSON bodies: bounded work on any body, and a fast path for hot routes.

`GatedJSONRoute` is FastAPI's own route with one step in front: a body over
`DIRECT_VALIDATION_MAX_BYTES` must first pass the body model's shape check (`BodyGate`),
whatever its content type, so that no body up to the size limit makes pydantic or FastAPI's
handler report (and hold) an error per unknown key, row or list item. Smaller bodies cannot
make them take more than a few MiB and go to FastAPI unchanged.

`ValidatedJSONRoute`, for the prediction routes: FastAPI's generic request handler decodes the
body with `json.loads`, validates the resulting dict, resolves dependencies, validates the
returned model once more and encodes it through `jsonable_encoder`: on a one-row prediction
that is most of the request's CPU time. A valid request on this route is decoded and
validated in one pass by pydantic-core (`model_validate_json`) and its result serialised by
the model's own serializer; its only extra step is comparing the body's length with the
gate's threshold.

Everything else keeps FastAPI's behaviour: a small body that does not validate, a non-JSON
content type or an empty body is handed to FastAPI's own handler (the body already read is
reused), so 422 details, 400s and OpenAPI stay FastAPI's. A large body that passes the gate
and still does not validate is answered from the fast path's own errors (at most one per
field of each row, by the gate's construction) instead of being validated a second time.
The endpoint takes the body model and, optionally, the `Request`; nothing else (no
dependencies), which construction checks. A valid request calls the endpoint directly, so
include such a route only through routers that add no dependencies of their own at
`include_router`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from credit_api.body_gate import BodyGate, BodyShapeError
from credit_api.middleware import header
from credit_api.routes.route_options import refuse_unsupported_options

JSON_CONTENT_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})

# Up to this size a body goes straight to pydantic and FastAPI. Their worst case is an object
# of unknown keys: pydantic converts the object into each missing field's error, about 330
# bytes per byte of body, so 16 KiB costs about 5 MiB; a one-row prediction is under 1 KiB.
DIRECT_VALIDATION_MAX_BYTES = 16 * 1024

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def rejected(error: BodyShapeError) -> RequestValidationError:
    """The gate's answer as FastAPI's 422 (the service's handler shapes and counts it)."""
    return RequestValidationError([error.error])


class GatedJSONRoute(APIRoute):
    """FastAPI's route, with bodies over DIRECT_VALIDATION_MAX_BYTES shape-checked first."""

    def get_route_handler(self) -> Handler:
        body_model = self.body_field.field_info.annotation if self.body_field else None
        if not (isinstance(body_model, type) and issubclass(body_model, BaseModel)):
            raise TypeError(f"{self.path}: a GatedJSONRoute takes one pydantic body model")
        return gated(super().get_route_handler(), BodyGate(body_model))


def gated(handler: Handler, gate: BodyGate) -> Handler:
    """`handler`, behind the gate for bodies over DIRECT_VALIDATION_MAX_BYTES."""

    async def handle(request: Request) -> Response:
        body = await request.body()  # cached on the request for FastAPI's handler
        if len(body) > DIRECT_VALIDATION_MAX_BYTES:
            try:
                gate.check(body)
            except BodyShapeError as error:
                raise rejected(error) from None
        return await handler(request)

    return handle


class ValidatedJSONRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        # APIRoute.__init__ calls this once the endpoint's signature has been analysed.
        refuse_unsupported_options(self)
        body_model, body_param = self._fast_path_body()
        gate = BodyGate(body_model)
        gated_handler = gated(super().get_route_handler(), gate)
        endpoint = self.endpoint
        request_param = self.dependant.request_param_name
        status_code = self.status_code or 200

        async def handle(request: Request) -> Response:
            body = await request.body()  # cached on the request for FastAPI's handler
            content_type = header(request.scope, b"content-type")
            if not body or content_type is None or content_type.lower() not in JSON_CONTENT_TYPES:
                return await gated_handler(request)
            if len(body) > DIRECT_VALIDATION_MAX_BYTES:
                value = validated_large_body(gate, body_model, body)
            else:
                try:
                    value = body_model.model_validate_json(body)
                except ValidationError:
                    return await gated_handler(request)  # FastAPI's 422, field paths and all
            kwargs: dict[str, Any] = {body_param: value}
            if request_param is not None:
                kwargs[request_param] = request
            result = await endpoint(**kwargs)
            if isinstance(result, Response):
                return result
            return Response(
                result.model_dump_json(), status_code=status_code, media_type="application/json"
            )

        return handle

    def _fast_path_body(self) -> tuple[type[BaseModel], str]:
        dependant = self.dependant
        body_model = self.body_field.field_info.annotation if self.body_field else None
        response_model = self.response_model
        if (
            len(dependant.body_params) != 1
            or not (isinstance(body_model, type) and issubclass(body_model, BaseModel))
            or not (isinstance(response_model, type) and issubclass(response_model, BaseModel))
            or dependant.dependencies
            or dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.background_tasks_param_name
            or dependant.response_param_name
        ):
            raise TypeError(
                f"{self.path}: a ValidatedJSONRoute endpoint takes one pydantic body model "
                "(and optionally the Request) and returns a pydantic model"
            )
        return body_model, dependant.body_params[0].name


def validated_large_body(gate: BodyGate, body_model: type[BaseModel], body: bytes) -> BaseModel:
    """The body validated after the gate; its errors raised as FastAPI's 422 would be."""
    try:
        gate.check(body)
    except BodyShapeError as error:
        raise rejected(error) from None
    try:
        return body_model.model_validate_json(body)
    except ValidationError as error:
        # FastAPI's own handler would validate the body a second time, from a dict.
        errors = error.errors(include_url=False, include_context=False, include_input=False)
    raise RequestValidationError(
        [{"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]} for e in errors]
    )
