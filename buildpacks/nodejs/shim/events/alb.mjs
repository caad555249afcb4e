// The Application Load Balancer event, single-value (alb) and multi-value (alb-multi): one
// module for both, as they differ only in which of two maps carry the headers and the query.
import { encodeBody, parseQuery } from './fields.mjs';
import { scanHeaders } from './headers.mjs';

/** The ALB event of one request; multi picks the alb-multi shape. */
export function alb(req, path, rawQuery, body, cfg, multi) {
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
