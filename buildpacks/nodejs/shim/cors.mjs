// CORS from the CORS setting: preflight answers and the allow-origin header on ordinary responses.

const ALLOW_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS';

/** Returns the Access-Control-Allow-Origin value for a request origin, or null when not allowed. */
export function allowedOrigin(cors, origin) {
  if (!origin) return null;
  // Browsers reject "*" on credentialed requests, so credentials force echoing the origin.
  if (cors.anyOrigin) return cors.allowCredentials ? origin : '*';
  return cors.origins.has(origin) ? origin : null;
}

/** Headers of a preflight answer (empty when the origin is not allowed). */
export function preflightHeaders(cors, origin) {
  const allow = allowedOrigin(cors, origin);
  if (allow === null) return { 'content-length': '0' };
  const headers = {
    'access-control-allow-origin': allow,
    'access-control-allow-methods': ALLOW_METHODS,
    'access-control-max-age': '86400',
    'content-length': '0',
  };
  if (cors.allowHeaders) headers['access-control-allow-headers'] = cors.allowHeaders;
  if (cors.allowCredentials) headers['access-control-allow-credentials'] = 'true';
  if (allow !== '*') headers.vary = 'Origin';
  return headers;
}

/** Adds allow-origin (and credentials, vary) to response headers unless the handler set its own. */
export function decorate(cors, origin, headers) {
  const allow = allowedOrigin(cors, origin);
  if (allow === null) return;
  for (const name of Object.keys(headers)) {
    if (name.toLowerCase() === 'access-control-allow-origin') return;
  }
  headers['access-control-allow-origin'] = allow;
  if (cors.allowCredentials) headers['access-control-allow-credentials'] = 'true';
  if (allow !== '*') {
    const vary = Object.keys(headers).find((n) => n.toLowerCase() === 'vary');
    if (vary === undefined) headers.vary = 'Origin';
    else headers[vary] = [].concat(headers[vary], 'Origin');
  }
}
