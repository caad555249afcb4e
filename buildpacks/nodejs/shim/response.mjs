// Turns a handler's result into an HTTP response, or rejects it as malformed (REFERENCE §2).
// Imported, not the global: the global Buffer is a getter, called on every use.
import { Buffer } from 'node:buffer';
import { headerName } from './events/headers.mjs';

/** The handler's result cannot become an HTTP response; httpd answers 502. */
export class MalformedResult extends Error {
  constructor(message) {
    super(message);
    this.name = 'MalformedResult';
  }
}

// We compute these ourselves from the body we actually send.
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);
// RFC 9110 §5.6.2: a field name is a token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// A CR, LF or NUL would end the header line (or the head) where the handler chose.
const LINE_BREAK = /[\r\n\0]/;
// Names already checked: handlers send the same few, so the check is one Set lookup.
const tokenNames = new Set();

/** Throws MalformedResult unless name is an RFC 9110 token (node:http would only throw later, unnamed). */
function checkName(name) {
  if (tokenNames.has(name)) return;
  if (!TOKEN.test(name)) throw new MalformedResult(`header name ${JSON.stringify(name)} is not an HTTP token`);
  if (tokenNames.size < 4096) tokenNames.add(name);
}

function headerValue(name, value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object' || typeof value === 'symbol' || typeof value === 'function') {
    throw new MalformedResult(`header ${JSON.stringify(name)} has a non-scalar value`);
  }
  const text = String(value);
  if (LINE_BREAK.test(text)) throw new MalformedResult(`header ${JSON.stringify(name)} has a CR, LF or NUL in its value`);
  return text;
}

/** Adds one handler header to out, merging it case-insensitively with a name already there. */
function mergeOne(out, names, name, text) {
  const lower = name.toLowerCase();
  if (HOP_HEADERS.has(lower)) return;
  const existing = names.get(lower);
  if (existing === undefined) {
    names.set(lower, name);
    out[name] = text;
  } else {
    const current = out[existing];
    const list = Array.isArray(current) ? current : [current];
    if (!list.includes(text)) list.push(text);
    out[existing] = list;
  }
}

/**
 * The common result, only `headers` and without two spellings of one name or a hop-by-hop
 * header, copied straight into the flat list; returns null when the general merge is needed.
 */
function plainHeaders(headers) {
  const out = [];
  const keys = Object.keys(headers);
  // Pairwise checks stay cheaper than a Map only for a handful of names.
  if (keys.length > 8) return null;
  for (let i = 0; i < keys.length; i++) {
    const name = keys[i];
    const value = headers[name];
    checkName(name);
    const lower = headerName(name).lower;
    if (HOP_HEADERS.has(lower)) return null;
    for (let j = 0; j < i; j++) {
      if (keys[j].length === name.length && headerName(keys[j]).lower === lower) return null;
    }
    const text = headerValue(name, value);
    if (text !== null) out.push(name, text);
  }
  return out;
}

/**
 * Merges headers and multiValueHeaders case-insensitively into the flat list node's writeHead
 * takes, [name, value, name, value, …], each value a string or a list of strings. A list costs
 * node less to send than an object and us less to build: no property stores with computed keys.
 * API Gateway's rule: a name in both sends the multi-value list, plus the single value when new.
 */
function mergeHeaders(headers, multiValueHeaders) {
  const hasHeaders = headers !== undefined && headers !== null;
  const validHeaders = hasHeaders && typeof headers === 'object' && !Array.isArray(headers);
  if (validHeaders && (multiValueHeaders === undefined || multiValueHeaders === null)) {
    const out = plainHeaders(headers);
    if (out !== null) return out;
  }
  const out = {};
  const names = new Map();
  if (multiValueHeaders !== undefined && multiValueHeaders !== null) {
    if (typeof multiValueHeaders !== 'object' || Array.isArray(multiValueHeaders)) {
      throw new MalformedResult('multiValueHeaders must be an object');
    }
    for (const name of Object.keys(multiValueHeaders)) {
      const values = multiValueHeaders[name];
      if (!Array.isArray(values)) throw new MalformedResult(`multiValueHeaders.${name} must be a list`);
      checkName(name);
      const lower = name.toLowerCase();
      if (HOP_HEADERS.has(lower)) continue;
      const list = [];
      for (const v of values) {
        const text = headerValue(name, v);
        if (text !== null) list.push(text);
      }
      names.set(lower, name);
      out[name] = list;
    }
  }
  if (hasHeaders) {
    if (!validHeaders) throw new MalformedResult('headers must be an object');
    for (const name of Object.keys(headers)) {
      checkName(name);
      const text = headerValue(name, headers[name]);
      if (text !== null) mergeOne(out, names, name, text);
    }
  }
  const list = [];
  for (const name of Object.keys(out)) list.push(name, out[name]);
  return list;
}

/** Returns the index of a header's name in a flat header list (any case), or -1. */
export function headerIndex(list, lowerName) {
  for (let i = 0; i < list.length; i += 2) {
    if (list[i].length === lowerName.length && list[i].toLowerCase() === lowerName) return i;
  }
  return -1;
}

function reasonFrom(statusDescription, statusCode) {
  if (typeof statusDescription !== 'string') return undefined;
  // It becomes the status line's reason phrase (RFC 9112 §4): a line break there is an
  // injected header, refused like one.
  if (LINE_BREAK.test(statusDescription)) throw new MalformedResult('statusDescription has a CR, LF or NUL');
  const prefix = `${statusCode} `;
  const reason = statusDescription.startsWith(prefix) ? statusDescription.slice(prefix.length) : statusDescription;
  // Other control characters are not allowed in a reason phrase either; the default is sent.
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(reason) ? reason : undefined;
}

function shortcut(result) {
  // A string goes out as it is (AWS's guide turns "Hello from Lambda!" into that body,
  // unquoted); anything else as its compact JSON text.
  const body = typeof result === 'string' ? result : JSON.stringify(result === undefined ? null : result);
  return { statusCode: 200, reason: undefined, headers: ['content-type', 'application/json'], body };
}

/**
 * Returns {statusCode, reason, headers, body} for a handler result in the given format, or
 * throws MalformedResult. headers is a flat [name, value, …] list (see mergeHeaders). body is a
 * Buffer for base64 results, else a string: node:http sends a string body in the same write as
 * the head, where a Buffer costs a second (writev) chunk.
 */
export function toHttpResponse(result, format) {
  const isObject = result !== null && typeof result === 'object' && !Array.isArray(result);
  if (format === 'apigw-v2' && !(isObject && 'statusCode' in result)) return shortcut(result);
  if (!isObject) throw new MalformedResult(`the result must be an object with statusCode, got ${result === null ? 'null' : typeof result}`);
  const { statusCode, body } = result;
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) {
    throw new MalformedResult(`statusCode must be an integer from 100 to 599, got ${JSON.stringify(statusCode)}`);
  }
  if (body !== undefined && body !== null && typeof body !== 'string') {
    throw new MalformedResult(`body must be a string, got ${typeof body}`);
  }
  const out = mergeHeaders(result.headers, result.multiValueHeaders);
  if (format === 'apigw-v2' && result.cookies !== undefined && result.cookies !== null) {
    if (!Array.isArray(result.cookies)) throw new MalformedResult('cookies must be a list');
    const existing = headerIndex(out, 'set-cookie');
    const list = existing === -1 ? [] : [].concat(out[existing + 1]);
    for (const c of result.cookies) list.push(headerValue('set-cookie', c) ?? 'null');
    if (existing === -1) out.push('set-cookie', list);
    else out[existing + 1] = list;
  }
  let payload = '';
  if (body && result.isBase64Encoded === true) payload = Buffer.from(body, 'base64');
  else if (body) payload = body;
  const isAlb = format === 'alb' || format === 'alb-multi';
  return { statusCode, reason: isAlb ? reasonFrom(result.statusDescription, statusCode) : undefined, headers: out, body: payload };
}
