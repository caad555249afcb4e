// httpd handlers for the tests both shims share (test_both.py); app.py is the same in Python.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const millis = (event) => Number((event.queryStringParameters || {}).ms || 0);
let running = 0;
let peak = 0;

/** Waits ?ms= milliseconds, then answers "slept". */
export async function sleepy(event) {
  await sleep(millis(event));
  return { statusCode: 200, body: 'slept' };
}

/** Waits ?ms= milliseconds and answers the most calls it has seen running at once. */
export async function counted(event) {
  running += 1;
  peak = Math.max(peak, running);
  try {
    await sleep(millis(event));
  } finally {
    running -= 1;
  }
  return { statusCode: 200, body: JSON.stringify({ peak }) };
}

/** Answers the remaining time before and after a 200 ms wait. */
export async function remaining(event, context) {
  const first = context.getRemainingTimeInMillis();
  await sleep(200);
  return { statusCode: 200, body: JSON.stringify({ first, second: context.getRemainingTimeInMillis() }) };
}

/** Answers the event's path. */
export async function echo(event) {
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: event.path }) };
}

/** Answers the length of the request body it got. */
export async function big(event) {
  const body = event.body || '';
  const length = event.isBase64Encoded ? Buffer.from(body, 'base64').length : Buffer.byteLength(body);
  return { statusCode: 200, body: String(length) };
}
