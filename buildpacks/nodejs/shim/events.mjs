// Turns an HTTP request into the Lambda event of one of the four formats (REFERENCE §2).
import { randomUUID } from 'node:crypto';
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

/** Returns [body, isBase64Encoded]; body is null when the request had none. */
function encodeBody(bytes, contentType) {
  if (bytes === null || bytes.length === 0) return [null, false];
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

/** Splits a raw query string into [key, value] pairs, decoded or not. */
function queryPairs(raw, decoded) {
  const pairs = [];
  if (!raw) return pairs;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    pairs.push(decoded ? [decode(key), decode(value)] : [key, value]);
  }
  return pairs;
}

function singleAndMulti(pairs) {
  const single = {};
  const multi = {};
  for (const [key, value] of pairs) {
    single[key] = value;
    if (multi[key] === undefined) multi[key] = [value];
    else multi[key].push(value);
  }
  return [single, multi];
}

/**
 * Groups rawHeaders case-insensitively: [single (last value), multi (all values), lookup (lower-case
 * name → last value)]. keepCase keeps the first spelling the client used, as API Gateway REST does.
 */
function headerMaps(rawHeaders, keepCase) {
  const single = {};
  const multi = {};
  // A null-prototype object: a Map costs more per request than the whole header loop.
  const names = keepCase ? Object.create(null) : null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    let name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    if (keepCase) {
      const lower = name.toLowerCase();
      const first = names[lower];
      if (first === undefined) names[lower] = name;
      else name = first;
    } else {
      name = name.toLowerCase();
    }
    single[name] = value;
    if (multi[name] === undefined) multi[name] = [value];
    else multi[name].push(value);
  }
  return [single, multi];
}

/** Returns the first value of a header (name given in lower case) from Node's rawHeaders list. */
export function firstHeader(rawHeaders, lowerName) {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].length === lowerName.length && rawHeaders[i].toLowerCase() === lowerName) return rawHeaders[i + 1];
  }
  return undefined;
}

function sourceIp(req, rawHeaders) {
  const forwarded = firstHeader(rawHeaders, 'x-forwarded-for');
  if (forwarded) {
    const comma = forwarded.indexOf(',');
    return (comma === -1 ? forwarded : forwarded.slice(0, comma)).trim();
  }
  const peer = req.socket.remoteAddress || '';
  return peer.startsWith('::ffff:') ? peer.slice(7) : peer;
}

function domainName(rawHeaders) {
  const host = firstHeader(rawHeaders, 'host') || 'localhost';
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
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
  const [headers, multiValueHeaders] = headerMaps(req.rawHeaders, true);
  const [query, multiQuery] = rawQuery ? singleAndMulti(queryPairs(rawQuery, true)) : [null, null];
  const [eventBody, isBase64Encoded] = encodeBody(body, firstHeader(req.rawHeaders, 'content-type'));
  const isRoot = path === '/';
  const resource = isRoot ? '/' : '/{proxy+}';
  return {
    resource,
    path,
    httpMethod: req.method,
    headers,
    multiValueHeaders,
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
      identity: identity(sourceIp(req, req.rawHeaders), firstHeader(req.rawHeaders, 'user-agent')),
      resourcePath: resource,
      httpMethod: req.method,
      requestTime: clfTime(now),
      requestTimeEpoch: now,
      protocol: `HTTP/${req.httpVersion}`,
      path,
      domainName: domainName(req.rawHeaders),
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
      headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
    }
  }
  const host = domainName(raw);
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: rawQuery,
  };
  if (cookies) event.cookies = cookies;
  event.headers = headers;
  if (rawQuery) {
    const query = {};
    for (const [key, value] of queryPairs(rawQuery, true)) {
      query[key] = query[key] === undefined ? value : `${query[key]},${value}`;
    }
    event.queryStringParameters = query;
  }
  event.requestContext = {
    accountId: cfg.lambda.accountId,
    apiId: 'hybridless',
    domainName: host,
    domainPrefix: host.split('.')[0],
    http: {
      method: req.method,
      path,
      protocol: `HTTP/${req.httpVersion}`,
      sourceIp: sourceIp(req, raw),
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
  const [headers, multiValueHeaders] = headerMaps(req.rawHeaders, false);
  // ALB hands query keys and values over exactly as sent, still URL-encoded.
  const [query, multiQuery] = singleAndMulti(queryPairs(rawQuery, false));
  const [eventBody, isBase64Encoded] = encodeBody(body, headers['content-type']);
  const event = {
    requestContext: { elb: { targetGroupArn: cfg.targetGroupArn } },
    httpMethod: req.method,
    path,
  };
  if (multi) {
    event.multiValueQueryStringParameters = multiQuery;
    event.multiValueHeaders = multiValueHeaders;
  } else {
    event.queryStringParameters = query;
    event.headers = headers;
  }
  event.body = eventBody ?? '';
  event.isBase64Encoded = isBase64Encoded;
  return event;
}

/** Returns a builder (req, body Buffer|null, now epoch ms) → {event, requestId} for the configured format. */
export function eventBuilder(cfg) {
  const settings = {
    ...cfg,
    targetGroupArn: `arn:aws:elasticloadbalancing:${cfg.lambda.region}:${cfg.lambda.accountId}:targetgroup/${cfg.lambda.functionName}/0000000000000000`,
  };
  const format = cfg.httpFormat;
  return (req, body, now) => {
    const url = req.url;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    const requestId = randomUUID();
    let event;
    if (format === 'apigw-v1') event = restV1(req, path, rawQuery, body, settings, requestId, now);
    else if (format === 'apigw-v2') event = httpV2(req, path, rawQuery, body, settings, requestId, now);
    else event = alb(req, path, rawQuery, body, settings, format === 'alb-multi');
    return { event, requestId };
  };
}
