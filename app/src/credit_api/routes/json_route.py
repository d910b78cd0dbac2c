"""A FastAPI route class for hot JSON endpoints: one body model in, one model out.

FastAPI's generic request handler decodes the body with `json.loads`, validates the resulting
dict, resolves dependencies, validates the returned model once more and encodes it through
`jsonable_encoder`: on a one-row prediction that is most of the request's CPU time. A valid
request on this route is decoded and validated in one pass by pydantic-core
(`model_validate_json`) and its result serialised by the model's own serializer.

Everything else keeps FastAPI's behaviour exactly: a body that does not validate, a
non-JSON content type or an empty body is handed to FastAPI's own handler (the body already
read is reused), so 422 details, 400s and OpenAPI stay FastAPI's. The endpoint takes the body
model and, optionally, the `Request`; nothing else (no dependencies), which construction
checks. A valid request calls the endpoint directly, so include such a route only through
routers that add no dependencies of their own at `include_router`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from credit_api.middleware import header

JSON_CONTENT_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})


class ValidatedJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # APIRoute.__init__ calls this once the endpoint's signature has been analysed.
        fastapi_handler = super().get_route_handler()
        body_model, body_param = self._body_model()
        endpoint = self.endpoint
        request_param = self.dependant.request_param_name
        status_code = self.status_code or 200

        async def handle(request: Request) -> Response:
            body = await request.body()  # cached on the request for FastAPI's handler
            content_type = header(request.scope, b"content-type")
            if not body or content_type is None or content_type.lower() not in JSON_CONTENT_TYPES:
                return await fastapi_handler(request)
            try:
                value = body_model.model_validate_json(body)
            except ValidationError:
                return await fastapi_handler(request)  # its 422, field paths and all
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

    def _body_model(self) -> tuple[type[BaseModel], str]:
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
