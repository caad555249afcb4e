// Handlers for the httpd behaviour tests that the conformance corpus cannot express.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function slow(event) {
  const ms = Number((event.queryStringParameters || {}).ms || 500);
  const started = Date.now();
  await sleep(ms);
  return { statusCode: 200, body: JSON.stringify({ started, ended: Date.now() }) };
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
