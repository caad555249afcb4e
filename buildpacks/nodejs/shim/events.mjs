// Turns an HTTP request into the Lambda event of one of the four formats (REFERENCE §2).
import { randomFillSync } from 'node:crypto';
import * as buffer from 'node:buffer';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const TEXT_TYPES = new Set([
  'application/json', 'application/javascript', 'application/xml', 'application/x-www-form-urlencoded',
]);
// The module's Buffer, not the global one: the global is a getter, called on every use.
const { Buffer } = buffer;
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

// Request ids come from a pool of random bytes, refilled once per UUID_POOL_IDS ids: node's
// randomUUID refills its own 2 KB pool every 128 ids, and that refill was a visible share of
// each request's work. Each refill also formats the whole pool into one string, so an id is a
// 36-character slice of it (V8 shares the characters): about a quarter of the work of
// assembling each id from 20 pieces. A slice keeps its pool's text alive, so pools stay
// small: an id that a handler keeps for long holds on to 9 KB, not to a day's worth of ids.
const UUID_POOL_IDS = 256;
const UUID_LENGTH = 36;
// Where each of an id's 16 bytes goes in its text; the dashes between never move.
const UUID_SLOTS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
// The two hex digits of each byte value as one little-endian 16-bit unit: one store per byte.
const HEX_PAIRS = new Uint16Array(256);
for (let b = 0; b < 256; b++) {
  const digits = b.toString(16).padStart(2, '0');
  HEX_PAIRS[b] = digits.charCodeAt(0) | (digits.charCodeAt(1) << 8);
}
const uuidRandom = Buffer.allocUnsafe(16 * UUID_POOL_IDS);
const uuidBytes = Buffer.from('00000000-0000-0000-0000-000000000000'.repeat(UUID_POOL_IDS), 'latin1');
// A DataView, because half of the digit pairs start at odd offsets.
const uuidView = new DataView(uuidBytes.buffer, uuidBytes.byteOffset, uuidBytes.length);
let uuidText = '';
let uuidNext = UUID_POOL_IDS;

// One id per call rather than one loop over the pool: called for every id, V8 optimizes it
// like any hot function, where a loop that runs only once per refill would stay unoptimized.
function formatUuid(o, at) {
  // RFC 4122: version 4 in the high nibble of byte 6, variant 10xx in byte 8.
  uuidRandom[o + 6] = (uuidRandom[o + 6] & 0x0f) | 0x40;
  uuidRandom[o + 8] = (uuidRandom[o + 8] & 0x3f) | 0x80;
  for (let i = 0; i < 16; i++) {
    uuidView.setUint16(at + UUID_SLOTS[i], HEX_PAIRS[uuidRandom[o + i]], true);
  }
}

function refillUuids() {
  randomFillSync(uuidRandom);
  for (let id = 0; id < UUID_POOL_IDS; id++) formatUuid(16 * id, UUID_LENGTH * id);
  uuidText = uuidBytes.toString('latin1');
  uuidNext = 0;
}

/** Returns a fresh RFC 4122 version 4 UUID (122 random bits from the CSPRNG). */
export function requestUuid() {
  if (uuidNext === UUID_POOL_IDS) refillUuids();
  const start = UUID_LENGTH * uuidNext;
  uuidNext += 1;
  return uuidText.slice(start, start + UUID_LENGTH);
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

// REST APIs decode the query as a form: '+' is a space and '%2B' a plus, as AWS-validated
// recordings show (LocalStack's test_lambda_aws_proxy_integration snapshot).
const PLUSES = /\+/g;
function decodeForm(text) {
  return decode(text.indexOf('+') === -1 ? text : text.replace(PLUSES, ' '));
}

/** The path an HTTP API hands over: percent-decoded once, cut at a decoded "?". */
export function httpApiPath(rawPath) {
  if (rawPath.indexOf('%') === -1) return rawPath;
  // Live captures (hotsock/voker#8) show rawPath decoded once, and a decoded "?" ending it.
  const decoded = decode(rawPath);
  const q = decoded.indexOf('?');
  return q === -1 ? decoded : decoded.slice(0, q);
}

/** Stores value under key as an own data property, even when key is "__proto__". */
function put(target, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/**
 * Adds one value under key the slow, general way: right for every key, "__proto__" and the
 * names of Object.prototype's members included. joined holds repeats joined by "," (or the last
 * value when lists is given); lists, when given, holds every value in order.
 */
function addSlow(joined, lists, key, value) {
  // Only own values are strings and lists: inherited members ("constructor") are functions.
  const previous = joined[key];
  if (lists === null) {
    put(joined, key, typeof previous === 'string' ? `${previous},${value}` : value);
    return;
  }
  put(joined, key, value);
  const list = lists[key];
  if (Array.isArray(list)) list.push(value);
  else put(lists, key, [value]);
}

// Beyond this many distinct names, a Map keeps a scan linear.
const LINEAR_NAME_LIMIT = 32;

/**
 * The distinct names met by one scan, so that the scan knows a first value from a repeat
 * without looking the name up in the objects it builds: a lookup that fails walks the prototype
 * chain and cost more than the store that follows it. A linear search over a few names is
 * cheaper than hashing them; a Map takes over for long lists. Each scan kind keeps one instance
 * and resets it, because scans never re-enter; the lists keep the last scan's names until
 * overwritten, which is cheaper than clearing them on every request.
 */
class NameIndex {
  constructor() {
    this.names = [];
    this.keys = [];
    this.count = 0;
    this.map = null;
  }

  reset() {
    this.count = 0;
    this.map = null;
  }

  /** Returns the key recorded for name, or undefined after recording key as its key. */
  keyFor(name, key) {
    const count = this.count;
    for (let j = 0; j < count; j++) {
      if (this.names[j] === name) return this.keys[j];
    }
    if (this.map !== null) {
      const found = this.map.get(name);
      if (found !== undefined) return found;
      this.map.set(name, key);
      return undefined;
    }
    if (count < LINEAR_NAME_LIMIT) {
      this.names[count] = name;
      this.keys[count] = key;
      this.count = count + 1;
    } else {
      this.map = new Map([[name, key]]);
    }
    return undefined;
  }
}

/** A header name as spelled (by a client or a handler), and lower-cased. */
class HeaderName {
  constructor(spelling, lower) {
    this.spelling = spelling;
    this.lower = lower;
  }
}

// Header names met so far, by spelling, with both forms already interned by V8 (as property
// keys are). The parser hands over a fresh string for every name of every request; turning it
// into a property key costs a lower-casing and an interning lookup, and because no two are the
// same string, the store's inline cache gives up and takes the slowest path. Clients send the
// same few names each time, so one Map lookup replaces all of that; response.mjs looks up the
// handler's names here too. Clients choose the names, so the cache is bounded; names beyond it
// are simply not cached.
const HEADER_CACHE_LIMIT = 1024;
const headerCache = new Map();

/** Returns V8's interned copy of a string: object keys are interned, and Object.keys returns them. */
function interned(text) {
  return Object.keys({ [text]: 0 })[0];
}

/** Returns the HeaderName of a spelling, from the cache when it is there. */
export function headerName(spelling) {
  let name = headerCache.get(spelling);
  if (name === undefined) {
    if (headerCache.size >= HEADER_CACHE_LIMIT) return new HeaderName(spelling, spelling.toLowerCase());
    name = new HeaderName(interned(spelling), interned(spelling.toLowerCase()));
    headerCache.set(name.spelling, name);
  }
  return name;
}

const queryNames = new NameIndex();
const headerNames = new NameIndex();

const AMPERSAND = 0x26;
const EQUALS = 0x3d;
const PERCENT = 0x25;
const PLUS = 0x2b;

/**
 * Parses a raw query string in one pass over its characters (this runs on every request).
 * decoded is null (ALB: as sent), decode (HTTP API: percent-decoding) or decodeForm (REST).
 * Returns [single, multi]; with join, single holds repeats joined by "," (HTTP API 2.0) and
 * multi is null; otherwise single holds the last value.
 */
function parseQuery(raw, decoded, join) {
  const plusIsEscape = decoded === decodeForm;
  const single = {};
  const multi = join ? null : {};
  queryNames.reset();
  let start = 0;
  let eq = -1;
  let escaped = false;
  for (let i = 0; i <= raw.length; i++) {
    const c = i < raw.length ? raw.charCodeAt(i) : AMPERSAND;
    if (c === EQUALS) {
      if (eq === -1) eq = i;
    } else if (c === PERCENT || (c === PLUS && plusIsEscape)) {
      escaped = true;
    } else if (c === AMPERSAND) {
      if (i > start) {
        let key = raw.slice(start, eq === -1 ? i : eq);
        let value = eq === -1 ? '' : raw.slice(eq + 1, i);
        if (decoded !== null && escaped) {
          key = decoded(key);
          value = decoded(value);
        }
        const repeat = queryNames.keyFor(key, key) !== undefined;
        if (key === '__proto__') addSlow(single, multi, key, value);
        else if (join) single[key] = repeat ? `${single[key]},${value}` : value;
        else {
          single[key] = value;
          if (repeat) multi[key].push(value);
          else multi[key] = [value];
        }
      }
      start = i + 1;
      eq = -1;
      escaped = false;
    }
  }
  return [single, multi];
}

/**
 * One pass over Node's rawHeaders: the single-value (last wins) and multi-value maps, plus the
 * few headers the event needs. keepCase groups names case-insensitively under the first
 * spelling the client used, as API Gateway REST does; otherwise names are lower-cased.
 */
function scanHeaders(raw, keepCase) {
  const single = {};
  const multi = {};
  let contentType;
  let userAgent;
  let host;
  let forwardedFor;
  headerNames.reset();
  for (let i = 0; i < raw.length; i += 2) {
    const { spelling, lower } = headerName(raw[i]);
    const value = raw[i + 1];
    const first = headerNames.keyFor(lower, keepCase ? spelling : lower);
    const name = first ?? (keepCase ? spelling : lower);
    if (name === '__proto__') addSlow(single, multi, name, value);
    else {
      single[name] = value;
      if (first === undefined) multi[name] = [value];
      else multi[name].push(value);
    }
    switch (lower) {
      case 'content-type': contentType ??= value; break;
      case 'user-agent': userAgent ??= value; break;
      case 'host': host ??= value; break;
      case 'x-forwarded-for': forwardedFor ??= value; break;
      default: break;
    }
  }
  return { single, multi, contentType, userAgent, host, forwardedFor };
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

// The same for the first label of the domain (HTTP API's domainPrefix).
let lastPrefixOf = '';
let lastPrefix = '';

function domainPrefix(domain) {
  if (domain !== lastPrefixOf) {
    const dot = domain.indexOf('.');
    lastPrefix = dot === -1 ? domain : domain.slice(0, dot);
    lastPrefixOf = domain;
  }
  return lastPrefix;
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
  const [query, multiQuery] = rawQuery ? parseQuery(rawQuery, decodeForm, false) : NO_QUERY;
  const [eventBody, isBase64Encoded] = encodeBody(body, seen.contentType);
  const isRoot = path === '/';
  const resource = isRoot ? '/' : '/{proxy+}';
  const domain = domainName(seen.host);
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
      // A named REST stage prefixes this field, and only this one.
      path: cfg.stagePrefix + path,
      domainName: domain,
      domainPrefix: domainPrefix(domain),
    },
    body: eventBody,
    isBase64Encoded,
  };
}

function httpV2(req, path, rawQuery, body, cfg, requestId, now) {
  const headers = {};
  let cookies;
  // The joined values the event reads back, kept as they are built: looking up a header the
  // client did not send walks the prototype chain, the slowest lookup there is.
  let host;
  let userAgent;
  let forwardedFor;
  let contentType;
  headerNames.reset();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerName(raw[i]).lower;
    const value = raw[i + 1];
    if (name === 'cookie') {
      cookies ??= [];
      for (const c of value.split(';')) {
        const trimmed = c.trim();
        if (trimmed) cookies.push(trimmed);
      }
    } else if (name === '__proto__') {
      addSlow(headers, null, name, value);
    } else {
      const joined = headerNames.keyFor(name, name) === undefined ? value : `${headers[name]},${value}`;
      headers[name] = joined;
      switch (name) {
        case 'host': host = joined; break;
        case 'user-agent': userAgent = joined; break;
        case 'x-forwarded-for': forwardedFor = joined; break;
        case 'content-type': contentType = joined; break;
        default: break;
      }
    }
  }
  const domain = domainName(host);
  const decodedPath = httpApiPath(path);
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: decodedPath,
    rawQueryString: rawQuery,
  };
  if (cookies) event.cookies = cookies;
  event.headers = headers;
  if (rawQuery) event.queryStringParameters = parseQuery(rawQuery, decode, true)[0];
  event.requestContext = {
    accountId: cfg.lambda.accountId,
    apiId: 'hybridless',
    domainName: domain,
    domainPrefix: domainPrefix(domain),
    http: {
      method: req.method,
      path: decodedPath,
      protocol: protocolOf(req.httpVersion),
      sourceIp: sourceIp(req, forwardedFor),
      userAgent: userAgent ?? '',
    },
    requestId,
    routeKey: '$default',
    // Serverless's httpApi deploys to the $default stage, whatever STAGE says.
    stage: '$default',
    time: clfTime(now),
    timeEpoch: now,
  };
  const [eventBody, isBase64Encoded] = encodeBody(body, contentType);
  if (eventBody !== null) event.body = eventBody;
  event.isBase64Encoded = isBase64Encoded;
  return event;
}

function alb(req, path, rawQuery, body, cfg, multi) {
  const seen = scanHeaders(req.rawHeaders, false);
  // ALB hands query keys and values over exactly as sent, still URL-encoded.
  const [query, multiQuery] = parseQuery(rawQuery, null, false);
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
    stagePrefix: cfg.stage === '$default' ? '' : `/${cfg.stage}`,
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
