// Handlers for the httpd behaviour tests that the conformance corpus cannot express.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function slow(event) {
  const ms = Number((event.queryStringParameters || {}).ms || 500);
  const started = Date.now();
  await sleep(ms);
  return { statusCode: 200, body: JSON.stringify({ started, ended: Date.now() }) };
}

export async function remaining(event, context) {
  const first = context.getRemainingTimeInMillis();
  await sleep(200);
  const second = context.getRemainingTimeInMillis();
  return { statusCode: 200, body: JSON.stringify({ first, second }) };
}

export async function ok() {
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };
}

export async function ids(event, context) {
  const body = {
    requestId: event.requestContext.requestId,
    awsRequestId: context.awsRequestId,
    headers: event.headers,
    multiValueHeaders: event.multiValueHeaders,
  };
  return { statusCode: 200, body: JSON.stringify(body) };
}

export async function badHeaderName() {
  return { statusCode: 200, headers: { 'bad name': 'x' }, body: 'never sent' };
}
