// The API Gateway REST proxy event (apigw-v1).
import {
  NO_QUERY, clfTime, decodeForm, domainName, domainPrefix, encodeBody, parseQuery, protocolOf, sourceIp,
} from './fields.mjs';
import { scanHeaders } from './headers.mjs';

function identity(ip, userAgent) {
  return {
    cognitoIdentityPoolId: null, accountId: null, cognitoIdentityId: null, caller: null,
    sourceIp: ip, principalOrgId: null, accessKey: null, cognitoAuthenticationType: null,
    cognitoAuthenticationProvider: null, userArn: null, userAgent: userAgent ?? null, user: null,
    apiKey: null, apiKeyId: null, clientCert: null,
  };
}

/** The REST v1 event of one request. */
export function restV1(req, path, rawQuery, body, cfg, requestId, now) {
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
    // The proxy parameter loses a trailing slash, as AWS-validated recordings show.
    pathParameters: isRoot ? null : { proxy: path.endsWith('/') ? path.slice(1, -1) : path.slice(1) },
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
