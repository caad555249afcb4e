// Header names, interned once, and the scan of a request's headers every format starts from.
import { NameIndex, addSlow } from './fields.mjs';

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

export const headerNames = new NameIndex();

/**
 * One pass over Node's rawHeaders: the single-value (last wins) and multi-value maps, plus the
 * few headers the event needs. keepCase groups names case-insensitively under the first
 * spelling the client used, as API Gateway REST does; otherwise names are lower-cased.
 */
export function scanHeaders(raw, keepCase) {
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
