// Logistics tracking in JavaScript: where is the customer's parcel?
//
// The JavaScript twin of plugins/logistics-tracking. It implements the same
// WIT world (wit/connector.wit) directly, without an SDK: each export below is
// one of the world's exports, each import one of its host interfaces.
// componentize-js (StarlingMonkey) compiles it into a component.

import { send } from 'switchboard:connector/http@0.1.1';
import { get as configGet, secret } from 'switchboard:connector/config@0.1.1';

const NAME = 'logistics-tracking-js';
const VERSION = '0.1.0';

// Characters of an upstream body quoted in an error message.
const BODY_EXCERPT_CHARS = 200;

const TRACK_INPUT = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'TrackInput',
  description: 'The parcel to look up.',
  type: 'object',
  properties: {
    carrier: {
      description: 'Carrier code, such as `sf-express` or `ups`.',
      type: 'string',
      minLength: 1,
      maxLength: 64,
    },
    tracking_number: {
      description: "The carrier's tracking number of the parcel.",
      type: 'string',
      minLength: 1,
      maxLength: 64,
    },
  },
  required: ['carrier', 'tracking_number'],
};

const TRACKING_OUTPUT = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Tracking',
  description: 'Where a parcel is and where it has been.',
  type: 'object',
  properties: {
    carrier: { description: 'Carrier code.', type: 'string' },
    tracking_number: {
      description: "The carrier's tracking number of the parcel.",
      type: 'string',
    },
    status: {
      description:
        'Current status as the carrier reports it, such as `in_transit` or `delivered`.',
      type: 'string',
    },
    estimated_delivery: {
      description: 'Estimated delivery time, when the carrier gives one.',
      type: ['string', 'null'],
    },
    events: {
      description: 'Scan events in the order the carrier reports them.',
      type: 'array',
      items: {
        description: 'One scan of the parcel.',
        type: 'object',
        properties: {
          time: { description: 'When the scan happened.', type: 'string' },
          location: { description: 'Where the parcel was scanned.', type: 'string' },
          description: {
            description: "What happened, in the carrier's words.",
            type: 'string',
          },
        },
        required: ['time', 'location', 'description'],
      },
    },
  },
  required: ['carrier', 'tracking_number', 'status', 'events'],
};

/** A connector error as the world's `connector-error`, thrown to return `err`. */
class ConnectorError extends Error {
  constructor(code, message, retryable = false) {
    super(`${code}: ${message}`);
    this.payload = { code, message, retryable };
  }
}

export function describe() {
  return {
    name: NAME,
    version: VERSION,
    description:
      'Tracks parcels with the logistics provider: current status, estimated delivery and scan history.',
    operations: [
      {
        name: 'track',
        description: 'Returns the status, estimated delivery and scan history of a parcel.',
        inputSchema: JSON.stringify(TRACK_INPUT),
        outputSchema: JSON.stringify(TRACKING_OUTPUT),
        idempotent: true,
      },
    ],
    emits: [],
  };
}

export function invoke(_ctx, operation, input) {
  if (operation !== 'track') {
    throw new ConnectorError(
      'operation_not_found',
      `connector \`${NAME}\` has no operation \`${operation}\``,
    );
  }
  return JSON.stringify(track(parseInput(input)));
}

export function handleWebhook(_ctx, hook, _request) {
  throw new ConnectorError(
    'webhook_not_supported',
    `connector \`${NAME}\` takes no webhooks (hook \`${hook}\`)`,
  );
}

export function onEvent(_ctx, _event) {}

function parseInput(input) {
  let value;
  try {
    value = JSON.parse(input);
  } catch (e) {
    throw new ConnectorError('invalid_input', `input of \`track\`: ${e.message}`);
  }
  for (const field of ['carrier', 'tracking_number']) {
    if (typeof value?.[field] !== 'string') {
      throw new ConnectorError('invalid_input', `input of \`track\`: \`${field}\` must be a string`);
    }
  }
  return value;
}

function track(input) {
  const carrier = nonEmpty('carrier', input.carrier);
  const number = nonEmpty('tracking_number', input.tracking_number);
  const baseUrl = requireConfig('base_url').replace(/\/+$/, '');
  const url = `${baseUrl}/v1/tracking/${pathSegment(carrier)}/${pathSegment(number)}`;
  const response = sendRequest({
    method: 'GET',
    url,
    headers: [['Authorization', `Bearer ${requireSecret('api_key')}`]],
    body: new Uint8Array(),
  });
  if (response.status >= 200 && response.status < 300) {
    const parcel = parseJson(response);
    return {
      carrier: parcel.carrier,
      tracking_number: parcel.tracking_number,
      status: parcel.status,
      estimated_delivery: parcel.estimated_delivery ?? null,
      events: (parcel.events ?? []).map(({ time, location, description }) => ({
        time,
        location,
        description,
      })),
    };
  }
  throw providerError(response, carrier, number);
}

/** `value` without surrounding whitespace; `invalid_input` if nothing is left. */
function nonEmpty(field, value) {
  const trimmed = value.trim();
  if (trimmed === '') {
    throw new ConnectorError('invalid_input', `\`${field}\` must not be empty`);
  }
  return trimmed;
}

function requireConfig(key) {
  const value = configGet(key);
  if (!value) {
    throw new ConnectorError('config_missing', `configuration key \`${key}\` is not set`);
  }
  return value;
}

function requireSecret(name) {
  const value = secret(name);
  if (!value) {
    throw new ConnectorError('secret_missing', `secret \`${name}\` is not set`);
  }
  return value;
}

/** Sends through the host; a host refusal is returned to the caller as is. */
function sendRequest(request) {
  try {
    return send(request);
  } catch (e) {
    if (e?.payload?.code) {
      throw new ConnectorError(e.payload.code, e.payload.message, e.payload.retryable);
    }
    throw e;
  }
}

/** `value` percent-encoded as one URL path segment, byte by byte. */
function pathSegment(value) {
  if (value === '' || value === '.' || value === '..') {
    throw new ConnectorError('invalid_input', `\`${value}\` cannot be a URL path segment`);
  }
  let encoded = '';
  for (const byte of new TextEncoder().encode(value)) {
    const c = String.fromCharCode(byte);
    encoded += /[A-Za-z0-9\-._~]/.test(c)
      ? c
      : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

function bodyText(response) {
  return new TextDecoder().decode(response.body);
}

function parseJson(response) {
  try {
    return JSON.parse(bodyText(response));
  } catch (e) {
    throw new ConnectorError(
      'upstream_invalid_response',
      `upstream answered HTTP ${response.status} with unexpected JSON: ${e.message}`,
    );
  }
}

function providerError(response, carrier, number) {
  let detail;
  try {
    detail = JSON.parse(bodyText(response))?.error;
  } catch {
    detail = undefined;
  }
  if (response.status === 404) {
    return new ConnectorError('tracking_not_found', `carrier \`${carrier}\` has no parcel \`${number}\``);
  }
  if (response.status === 400 && typeof detail?.type === 'string') {
    if (detail.type === 'unknown_carrier' || detail.type === 'invalid_tracking_number') {
      return new ConnectorError(detail.type, detail.message ?? '');
    }
  }
  return upstreamStatus(response);
}

/** The SDK's mapping of an unexpected upstream status to an error. */
function upstreamStatus(response) {
  const status = response.status;
  const message = `upstream answered HTTP ${status}: ${excerpt(bodyText(response))}`;
  if (status === 401 || status === 403) return new ConnectorError('upstream_unauthorized', message);
  if (status === 404) return new ConnectorError('upstream_not_found', message);
  if (status === 429 || (status >= 500 && status <= 599)) {
    return new ConnectorError('upstream_unavailable', message, true);
  }
  return new ConnectorError('upstream_error', message);
}

function excerpt(text) {
  const trimmed = text.trim();
  if (trimmed === '') return '(empty body)';
  const chars = Array.from(trimmed);
  return chars.length > BODY_EXCERPT_CHARS
    ? `${chars.slice(0, BODY_EXCERPT_CHARS).join('')}…`
    : trimmed;
}
