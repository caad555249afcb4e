// The API Gateway HTTP API 2.0 event (apigw-v2), also what Lambda Function URLs send.
import {
  addSlow, clfTime, decode, domainName, domainPrefix, encodeBody, httpApiPath, parseQuery, protocolOf, sourceIp,
} from './fields.mjs';
import { headerName, headerNames } from './headers.mjs';

/** The HTTP API 2.0 event of one request. */
export function httpV2(req, path, rawQuery, body, cfg, requestId, now) {
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
