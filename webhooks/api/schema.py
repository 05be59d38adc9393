"""The OpenAPI description of the API: drf-spectacular, plus the error answers it gives.

drf-spectacular documents the success answer of each operation only; a client (and a
schema-driven fuzzer) also needs to know that bad input is a 400 with field messages,
and that a missing — or another tenant's — object is a 404.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": "Field name (or non_field_errors, or detail) → messages.",
    "additionalProperties": {},
}


class WebhooksAutoSchema(AutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        from ..registry import registry
        from .serializers import EventTypeNamesField

        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, EventTypeNamesField) and direction == "request":
            # What may be sent is what the code declares (the event-types/ list shows
            # which of them are switched on); answers may still name retired types.
            schema["items"] = {**schema.get("items", {}), "enum": registry.names()}
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        detail = "{" in self.path
        listing = not detail and self.method == "GET"
        writes = (
            self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        )
        errors = {
            "400": (FIELD_ERRORS, "Invalid input; the messages say what to change.")
            if writes or listing
            else None,
            "401": (DETAIL, "Not authenticated."),
            "403": (DETAIL, "Authenticated, but not allowed to use this API."),
            "404": (DETAIL, "No such object (or it belongs to another tenant), or no such page.")
            if detail or listing
            else None,
            "415": (DETAIL, "Send JSON.") if writes else None,
        }
        for code, error in errors.items():
            if error is not None and code not in responses:
                schema, description = error
                responses[code] = {
                    "content": {"application/json": {"schema": schema}},
                    "description": description,
                }
        return responses
