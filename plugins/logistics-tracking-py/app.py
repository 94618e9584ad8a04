"""Logistics tracking in Python: where is the customer's parcel?

The Python twin of plugins/logistics-tracking. It implements the WIT world
(wit/connector.wit) directly: componentize-py generates the `wit_world`
bindings from the same WIT, and the `WitWorld` class below provides the
world's exports. Only the standard library is used.
"""

import json
import re

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, http, types

NAME = "logistics-tracking-py"
VERSION = "0.1.0"

# Characters of an upstream body quoted in an error message.
BODY_EXCERPT_CHARS = 200

TRACK_INPUT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "TrackInput",
    "description": "The parcel to look up.",
    "type": "object",
    "properties": {
        "carrier": {
            "description": "Carrier code, such as `sf-express` or `ups`.",
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
        },
        "tracking_number": {
            "description": "The carrier's tracking number of the parcel.",
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
        },
    },
    "required": ["carrier", "tracking_number"],
}

TRACKING_OUTPUT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Tracking",
    "description": "Where a parcel is and where it has been.",
    "type": "object",
    "properties": {
        "carrier": {"description": "Carrier code.", "type": "string"},
        "tracking_number": {
            "description": "The carrier's tracking number of the parcel.",
            "type": "string",
        },
        "status": {
            "description": "Current status as the carrier reports it, "
            "such as `in_transit` or `delivered`.",
            "type": "string",
        },
        "estimated_delivery": {
            "description": "Estimated delivery time, when the carrier gives one.",
            "type": ["string", "null"],
        },
        "events": {
            "description": "Scan events in the order the carrier reports them.",
            "type": "array",
            "items": {
                "description": "One scan of the parcel.",
                "type": "object",
                "properties": {
                    "time": {"description": "When the scan happened.", "type": "string"},
                    "location": {
                        "description": "Where the parcel was scanned.",
                        "type": "string",
                    },
                    "description": {
                        "description": "What happened, in the carrier's words.",
                        "type": "string",
                    },
                },
                "required": ["time", "location", "description"],
            },
        },
    },
    "required": ["carrier", "tracking_number", "status", "events"],
}

UNRESERVED = re.compile(rb"[A-Za-z0-9\-._~]")


def fail(code: str, message: str, retryable: bool = False) -> Err:
    """The world's `connector-error`, raised to return `err`."""
    return Err(types.ConnectorError(code=code, message=message, retryable=retryable))


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.Info:
        return types.Info(
            name=NAME,
            version=VERSION,
            description="Tracks parcels with the logistics provider: current status, "
            "estimated delivery and scan history.",
            operations=[
                types.Operation(
                    name="track",
                    description="Returns the status, estimated delivery and scan history of a parcel.",
                    input_schema=json.dumps(TRACK_INPUT),
                    output_schema=json.dumps(TRACKING_OUTPUT),
                    idempotent=True,
                )
            ],
            emits=[],
        )

    def invoke(self, ctx: types.CallContext, operation: str, input: str) -> str:
        if operation != "track":
            raise fail("operation_not_found", f"connector `{NAME}` has no operation `{operation}`")
        return json.dumps(track(parse_input(input)), ensure_ascii=False)

    def handle_webhook(
        self, ctx: types.CallContext, hook: str, req: types.HttpRequest
    ) -> types.WebhookOutcome:
        raise fail("webhook_not_supported", f"connector `{NAME}` takes no webhooks (hook `{hook}`)")

    def on_event(self, ctx: types.CallContext, event: types.Event) -> None:
        return None


def parse_input(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise fail("invalid_input", f"input of `track`: {e}")
    for field in ("carrier", "tracking_number"):
        if not isinstance(value, dict) or not isinstance(value.get(field), str):
            raise fail("invalid_input", f"input of `track`: `{field}` must be a string")
    return value


def track(parcel: dict) -> dict:
    carrier = non_empty("carrier", parcel["carrier"])
    number = non_empty("tracking_number", parcel["tracking_number"])
    base_url = require_config("base_url").rstrip("/")
    url = f"{base_url}/v1/tracking/{path_segment(carrier)}/{path_segment(number)}"
    response = http.send(
        types.HttpRequest(
            method="GET",
            url=url,
            headers=[("Authorization", f"Bearer {require_secret('api_key')}")],
            body=b"",
        )
    )
    if 200 <= response.status < 300:
        found = parse_json(response)
        return {
            "carrier": found.get("carrier"),
            "tracking_number": found.get("tracking_number"),
            "status": found.get("status"),
            "estimated_delivery": found.get("estimated_delivery"),
            "events": [
                {
                    "time": event.get("time"),
                    "location": event.get("location"),
                    "description": event.get("description"),
                }
                for event in found.get("events") or []
            ],
        }
    raise provider_error(response, carrier, number)


def non_empty(field: str, value: str) -> str:
    """`value` without surrounding whitespace; `invalid_input` if nothing is left."""
    trimmed = value.strip()
    if not trimmed:
        raise fail("invalid_input", f"`{field}` must not be empty")
    return trimmed


def require_config(key: str) -> str:
    value = config.get(key)
    if not value:
        raise fail("config_missing", f"configuration key `{key}` is not set")
    return value


def require_secret(name: str) -> str:
    value = config.secret(name)
    if not value:
        raise fail("secret_missing", f"secret `{name}` is not set")
    return value


def path_segment(value: str) -> str:
    """`value` percent-encoded as one URL path segment, byte by byte."""
    if value in ("", ".", ".."):
        raise fail("invalid_input", f"`{value}` cannot be a URL path segment")
    return "".join(
        chr(byte) if UNRESERVED.fullmatch(bytes([byte])) else f"%{byte:02X}"
        for byte in value.encode("utf-8")
    )


def body_text(response: types.HttpResponse) -> str:
    return bytes(response.body).decode("utf-8", errors="replace")


def parse_json(response: types.HttpResponse) -> dict:
    try:
        return json.loads(body_text(response))
    except ValueError as e:
        raise fail(
            "upstream_invalid_response",
            f"upstream answered HTTP {response.status} with unexpected JSON: {e}",
        )


def provider_error(response: types.HttpResponse, carrier: str, number: str) -> Err:
    try:
        detail = json.loads(body_text(response)).get("error")
    except (ValueError, AttributeError):
        detail = None
    if response.status == 404:
        return fail("tracking_not_found", f"carrier `{carrier}` has no parcel `{number}`")
    if response.status == 400 and isinstance(detail, dict):
        kind = detail.get("type")
        if kind in ("unknown_carrier", "invalid_tracking_number"):
            return fail(kind, detail.get("message") or "")
    return upstream_status(response)


def upstream_status(response: types.HttpResponse) -> Err:
    """The SDK's mapping of an unexpected upstream status to an error."""
    status = response.status
    message = f"upstream answered HTTP {status}: {excerpt(body_text(response))}"
    if status in (401, 403):
        return fail("upstream_unauthorized", message)
    if status == 404:
        return fail("upstream_not_found", message)
    if status == 429 or 500 <= status <= 599:
        return fail("upstream_unavailable", message, retryable=True)
    return fail("upstream_error", message)


def excerpt(text: str) -> str:
    trimmed = text.strip()
    if not trimmed:
        return "(empty body)"
    if len(trimmed) > BODY_EXCERPT_CHARS:
        return trimmed[:BODY_EXCERPT_CHARS] + "…"
    return trimmed
