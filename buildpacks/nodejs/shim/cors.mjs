// CORS from the CORS setting: preflight answers and the allow-origin header on ordinary responses.
// Headers here are the flat [name, value, …] lists node's writeHead takes (see response.mjs).
import { headerIndex } from './response.mjs';

const ALLOW_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS';

/** Returns the Access-Control-Allow-Origin value for a request origin, or null when not allowed. */
export function allowedOrigin(cors, origin) {
  if (!origin) return null;
  // Browsers reject "*" on credentialed requests, so credentials force echoing the origin.
  if (cors.anyOrigin) return cors.allowCredentials ? origin : '*';
  return cors.origins.has(origin) ? origin : null;
}

/** Headers of a preflight answer (none when the origin is not allowed). */
export function preflightHeaders(cors, origin) {
  const allow = allowedOrigin(cors, origin);
  if (allow === null) return [];
  const headers = [
    'access-control-allow-origin', allow,
    'access-control-allow-methods', ALLOW_METHODS,
    'access-control-max-age', '86400',
  ];
  if (cors.allowHeaders) headers.push('access-control-allow-headers', cors.allowHeaders);
  if (cors.allowCredentials) headers.push('access-control-allow-credentials', 'true');
  if (allow !== '*') headers.push('vary', 'Origin');
  return headers;
}

/** Adds allow-origin (and credentials, vary) to response headers unless the handler set its own. */
export function decorate(cors, origin, headers) {
  const allow = allowedOrigin(cors, origin);
  if (allow === null) return;
  if (headerIndex(headers, 'access-control-allow-origin') !== -1) return;
  headers.push('access-control-allow-origin', allow);
  if (cors.allowCredentials) headers.push('access-control-allow-credentials', 'true');
  if (allow !== '*') {
    const vary = headerIndex(headers, 'vary');
    if (vary === -1) headers.push('vary', 'Origin');
    else headers[vary + 1] = [].concat(headers[vary + 1], 'Origin');
  }
}
