// Turns an HTTP request into the Lambda event of one of the four formats (REFERENCE §2).
import { randomFillSync } from 'node:crypto';
import * as buffer from 'node:buffer';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const TEXT_TYPES = new Set([
  'application/json', 'application/javascript', 'application/xml', 'application/x-www-form-urlencoded',
]);
const decoder = new TextDecoder('utf-8', { fatal: true });
// buffer.isUtf8 needs Node 18.14; the fatal decoder is the fallback on older 18s.
const isUtf8 = buffer.isUtf8 || ((bytes) => {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
});

// Request ids come from one large random pool, refilled rarely: node's randomUUID refills its
// own 2 KB pool every 128 ids, and that refill was a visible share of each request's work.
const UUID_POOL_IDS = 4096;
const uuidPool = Buffer.allocUnsafe(16 * UUID_POOL_IDS);
let uuidNext = UUID_POOL_IDS;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Returns a fresh RFC 4122 version 4 UUID (122 random bits from the CSPRNG). */
export function requestUuid() {
  if (uuidNext === UUID_POOL_IDS) {
    randomFillSync(uuidPool);
    uuidNext = 0;
  }
  const b = uuidPool;
  const o = 16 * uuidNext;
  uuidNext += 1;
  return `${HEX[b[o]]}${HEX[b[o + 1]]}${HEX[b[o + 2]]}${HEX[b[o + 3]]}-${HEX[b[o + 4]]}${HEX[b[o + 5]]}-`
    + `${HEX[(b[o + 6] & 0x0f) | 0x40]}${HEX[b[o + 7]]}-${HEX[(b[o + 8] & 0x3f) | 0x80]}${HEX[b[o + 9]]}-`
    + `${HEX[b[o + 10]]}${HEX[b[o + 11]]}${HEX[b[o + 12]]}${HEX[b[o + 13]]}${HEX[b[o + 14]]}${HEX[b[o + 15]]}`;
}

const pad2 = (n) => (n < 10 ? `0${n}` : `${n}`);
let clfSecond = -1;
let clfText = '';

/** Formats epoch ms as CLF "dd/Mon/yyyy:HH:mm:ss +0000", cached per second because every request needs it. */
export function clfTime(epochMs) {
  const second = Math.floor(epochMs / 1000);
  if (second !== clfSecond) {
    const d = new Date(second * 1000);
    clfText = `${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:`
      + `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`;
    clfSecond = second;
  }
  return clfText;
}

function isTextType(contentType) {
  if (!contentType) return false;
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type.startsWith('text/') || TEXT_TYPES.has(type) || type.endsWith('+json') || type.endsWith('+xml');
}

// Shared answers for the common cases; callers only destructure them.
const NO_BODY = [null, false];
const NO_QUERY = [null, null];

/** Returns [body, isBase64Encoded]; body is null when the request had none. */
function encodeBody(bytes, contentType) {
  if (bytes === null || bytes.length === 0) return NO_BODY;
  if (isTextType(contentType) && isUtf8(bytes)) return [bytes.toString('utf8'), false];
  return [bytes.toString('base64'), true];
}

function decode(text) {
  if (text.indexOf('%') === -1) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    // A malformed escape is passed through as sent rather than failing the request.
    return text;
  }
}

/** Stores value under key as an own data property, even when key is "__proto__". */
function put(target, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** Appends to the list at key; keys like "constructor" name inherited members, not lists. */
function append(target, key, value) {
  const list = target[key];
  if (Array.isArray(list)) list.push(value);
  else put(target, key, [value]);
}

/**
 * Parses a raw query string in one pass, without intermediate arrays (this runs on every
 * request). Returns [single, multi]; with join, single holds repeats joined by "," (HTTP API
 * 2.0) and multi is null; otherwise single holds the last value.
 */
function parseQuery(raw, decoded, join) {
  const single = {};
  const multi = join ? null : {};
  let start = 0;
  while (start <= raw.length) {
    let end = raw.indexOf('&', start);
    if (end === -1) end = raw.length;
    if (end > start) {
      const eq = raw.indexOf('=', start);
      const hasValue = eq !== -1 && eq < end;
      let key = raw.slice(start, hasValue ? eq : end);
      let value = hasValue ? raw.slice(eq + 1, end) : '';
      if (decoded) {
        key = decode(key);
        value = decode(value);
      }
      if (join) {
        const previous = single[key];
        put(single, key, typeof previous === 'string' ? `${previous},${value}` : value);
      } else {
        put(single, key, value);
        append(multi, key, value);
      }
    }
    start = end + 1;
  }
  return [single, multi];
}

/**
 * One pass over Node's rawHeaders: the single-value (last wins) and multi-value maps, plus the
 * few headers the event needs. keepCase groups names case-insensitively under the first
 * spelling the client used, as API Gateway REST does; otherwise names are lower-cased.
 */
// Scratch lists for scanHeaders' case-insensitive grouping, reused because it never re-enters:
// a linear search over a handful of names is cheaper than a dictionary object per request.
const scratchLower = [];
const scratchName = [];

// Beyond this many raw header entries, a dictionary keeps the grouping linear.
const LINEAR_SCAN_LIMIT = 64;

function spellingOf(lower, spelling, count) {
  for (let j = 0; j < count; j++) {
    if (scratchLower[j] === lower) return scratchName[j];
  }
  scratchLower[count] = lower;
  scratchName[count] = spelling;
  return null;
}

function scanHeaders(raw, keepCase) {
  const single = {};
  const multi = {};
  const seen = { single, multi, contentType: undefined, userAgent: undefined, host: undefined, forwardedFor: undefined };
  const names = keepCase && raw.length > LINEAR_SCAN_LIMIT ? {} : null;
  let distinct = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const value = raw[i + 1];
    const lower = raw[i].toLowerCase();
    let name = lower;
    if (names !== null) {
      // The typeof check skips inherited members ("constructor").
      const first = names[lower];
      if (typeof first === 'string') name = first;
      else put(names, lower, (name = raw[i]));
    } else if (keepCase) {
      name = spellingOf(lower, raw[i], distinct);
      if (name === null) {
        name = raw[i];
        distinct += 1;
      }
    }
    put(single, name, value);
    append(multi, name, value);
    switch (lower) {
      case 'content-type': seen.contentType ??= value; break;
      case 'user-agent': seen.userAgent ??= value; break;
      case 'host': seen.host ??= value; break;
      case 'x-forwarded-for': seen.forwardedFor ??= value; break;
      default: break;
    }
  }
  // The scratch lists keep the last request's names until overwritten: at most
  // LINEAR_SCAN_LIMIT / 2 strings, cheaper to keep than to clear on every request.
  return seen;
}

/** Returns the first value of a header (name given in lower case) from Node's rawHeaders list. */
export function firstHeader(rawHeaders, lowerName) {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].length === lowerName.length && rawHeaders[i].toLowerCase() === lowerName) return rawHeaders[i + 1];
  }
  return undefined;
}

// The peer address of a keep-alive connection, kept on its socket: reading remoteAddress
// goes through node:net's getter on every request otherwise.
const PEER_IP = Symbol('hybridless.peerIp');

function sourceIp(req, forwardedFor) {
  if (forwardedFor) {
    const comma = forwardedFor.indexOf(',');
    return (comma === -1 ? forwardedFor : forwardedFor.slice(0, comma)).trim();
  }
  const socket = req.socket;
  let ip = socket[PEER_IP];
  if (ip === undefined) {
    const peer = socket.remoteAddress || '';
    ip = peer.startsWith('::ffff:') ? peer.slice(7) : peer;
    // Unknown until connected: only a real address is worth keeping.
    if (ip !== '') socket[PEER_IP] = ip;
  }
  return ip;
}

// Clients send the same Host on every request, so the last answer is almost always reusable.
let lastHost = '';
let lastDomain = 'localhost';

function domainName(host) {
  if (!host) return 'localhost';
  if (host === lastHost) return lastDomain;
  let domain;
  if (host.startsWith('[')) domain = host.slice(0, host.indexOf(']') + 1);
  else {
    const colon = host.indexOf(':');
    domain = colon === -1 ? host : host.slice(0, colon);
  }
  lastHost = host;
  lastDomain = domain;
  return domain;
}

function protocolOf(httpVersion) {
  if (httpVersion === '1.1') return 'HTTP/1.1';
  return httpVersion === '1.0' ? 'HTTP/1.0' : `HTTP/${httpVersion}`;
}

function identity(ip, userAgent) {
  return {
    cognitoIdentityPoolId: null, accountId: null, cognitoIdentityId: null, caller: null,
    sourceIp: ip, principalOrgId: null, accessKey: null, cognitoAuthenticationType: null,
    cognitoAuthenticationProvider: null, userArn: null, userAgent: userAgent ?? null, user: null,
    apiKey: null, apiKeyId: null, clientCert: null,
  };
}

function restV1(req, path, rawQuery, body, cfg, requestId, now) {
  const seen = scanHeaders(req.rawHeaders, true);
  const [query, multiQuery] = rawQuery ? parseQuery(rawQuery, true, false) : NO_QUERY;
  const [eventBody, isBase64Encoded] = encodeBody(body, seen.contentType);
  const isRoot = path === '/';
  const resource = isRoot ? '/' : '/{proxy+}';
  return {
    resource,
    path,
    httpMethod: req.method,
    headers: seen.single,
    multiValueHeaders: seen.multi,
    queryStringParameters: query,
    multiValueQueryStringParameters: multiQuery,
    pathParameters: isRoot ? null : { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: cfg.lambda.accountId,
      apiId: 'hybridless',
      resourceId: isRoot ? 'root' : 'proxy',
      stage: cfg.stage,
      requestId,
      extendedRequestId: requestId,
      identity: identity(sourceIp(req, seen.forwardedFor), seen.userAgent),
      resourcePath: resource,
      httpMethod: req.method,
      requestTime: clfTime(now),
      requestTimeEpoch: now,
      protocol: protocolOf(req.httpVersion),
      path,
      domainName: domainName(seen.host),
    },
    body: eventBody,
    isBase64Encoded,
  };
}

function httpV2(req, path, rawQuery, body, cfg, requestId, now) {
  const headers = {};
  let cookies;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (name === 'cookie') {
      cookies ??= [];
      for (const c of value.split(';')) {
        const trimmed = c.trim();
        if (trimmed) cookies.push(trimmed);
      }
    } else {
      // Only own values are strings: inherited members ("constructor") are functions.
      const previous = headers[name];
      put(headers, name, typeof previous === 'string' ? `${previous},${value}` : value);
    }
  }
  const host = domainName(headers.host);
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: rawQuery,
  };
  if (cookies) event.cookies = cookies;
  event.headers = headers;
  if (rawQuery) event.queryStringParameters = parseQuery(rawQuery, true, true)[0];
  event.requestContext = {
    accountId: cfg.lambda.accountId,
    apiId: 'hybridless',
    domainName: host,
    domainPrefix: host.split('.')[0],
    http: {
      method: req.method,
      path,
      protocol: protocolOf(req.httpVersion),
      sourceIp: sourceIp(req, headers['x-forwarded-for']),
      userAgent: headers['user-agent'] ?? '',
    },
    requestId,
    routeKey: '$default',
    stage: cfg.stage,
    time: clfTime(now),
    timeEpoch: now,
  };
  const [eventBody, isBase64Encoded] = encodeBody(body, headers['content-type']);
  if (eventBody !== null) event.body = eventBody;
  event.isBase64Encoded = isBase64Encoded;
  return event;
}

function alb(req, path, rawQuery, body, cfg, multi) {
  const seen = scanHeaders(req.rawHeaders, false);
  // ALB hands query keys and values over exactly as sent, still URL-encoded.
  const [query, multiQuery] = parseQuery(rawQuery, false, false);
  const [eventBody, isBase64Encoded] = encodeBody(body, seen.contentType);
  const event = {
    requestContext: { elb: { targetGroupArn: cfg.targetGroupArn } },
    httpMethod: req.method,
    path,
  };
  if (multi) {
    event.multiValueQueryStringParameters = multiQuery;
    event.multiValueHeaders = seen.multi;
  } else {
    event.queryStringParameters = query;
    event.headers = seen.single;
  }
  event.body = eventBody ?? '';
  event.isBase64Encoded = isBase64Encoded;
  return event;
}

/** Returns a builder (req, body Buffer|null, now epoch ms, requestId) → event for the configured format. */
export function eventBuilder(cfg) {
  const settings = {
    ...cfg,
    targetGroupArn: `arn:aws:elasticloadbalancing:${cfg.lambda.region}:${cfg.lambda.accountId}:targetgroup/${cfg.lambda.functionName}/0000000000000000`,
  };
  const format = cfg.httpFormat;
  return (req, body, now, requestId) => {
    const url = req.url;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    if (format === 'apigw-v1') return restV1(req, path, rawQuery, body, settings, requestId, now);
    if (format === 'apigw-v2') return httpV2(req, path, rawQuery, body, settings, requestId, now);
    return alb(req, path, rawQuery, body, settings, format === 'alb-multi');
  };
}
