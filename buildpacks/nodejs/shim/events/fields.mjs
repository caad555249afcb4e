// What several event formats share: times, bodies, queries, paths, hosts, addresses.
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
export const NO_QUERY = [null, null];

/** Returns [body, isBase64Encoded]; body is null when the request had none. */
export function encodeBody(bytes, contentType) {
  if (bytes === null || bytes.length === 0) return NO_BODY;
  if (isTextType(contentType) && isUtf8(bytes)) return [bytes.toString('utf8'), false];
  return [bytes.toString('base64'), true];
}

/** Percent-decodes text once; a malformed escape is kept as sent. */
export function decode(text) {
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
/** Decodes a query key or value as a form: '+' is a space, '%2B' a plus. */
export function decodeForm(text) {
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
export function addSlow(joined, lists, key, value) {
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
export class NameIndex {
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

const queryNames = new NameIndex();

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
export function parseQuery(raw, decoded, join) {
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

// The peer address of a keep-alive connection, kept on its socket: reading remoteAddress
// goes through node:net's getter on every request otherwise.
const PEER_IP = Symbol('hybridless.peerIp');

/** The first address of X-Forwarded-For, else the peer's. */
export function sourceIp(req, forwardedFor) {
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

/** The Host header without its port (IPv6 literals keep their brackets); localhost without one. */
export function domainName(host) {
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

/** The first label of a domain name (requestContext.domainPrefix). */
export function domainPrefix(domain) {
  if (domain !== lastPrefixOf) {
    const dot = domain.indexOf('.');
    lastPrefix = dot === -1 ? domain : domain.slice(0, dot);
    lastPrefixOf = domain;
  }
  return lastPrefix;
}

/** The request's protocol as the events spell it, e.g. HTTP/1.1. */
export function protocolOf(httpVersion) {
  if (httpVersion === '1.1') return 'HTTP/1.1';
  return httpVersion === '1.0' ? 'HTTP/1.0' : `HTTP/${httpVersion}`;
}
