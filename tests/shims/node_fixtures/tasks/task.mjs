// Handlers for the task event type tests: each export settles one way.
export async function ok(event) {
  return { statusCode: 200, event, argv: process.argv.slice(2) };
}

export async function echo(event) {
  return event;
}

export async function noStatus() {
  return { done: true };
}

export async function notFound() {
  return { statusCode: 404, body: 'missing' };
}

export async function throws() {
  console.log('a line the handler printed');
  throw new TypeError('task failed on purpose');
}

export function callbackStyle(event, context, callback) {
  setTimeout(() => callback(null, { statusCode: 200, via: 'callback' }), 10);
}

export function syncReturn(event) {
  return { statusCode: 200, via: 'sync' };
}

export function loopRunsDry(event) {
  // Neither returns nor calls back: the task ends when nothing is left to do.
  setTimeout(() => {}, 20);
}

export async function context(event, ctx) {
  const first = ctx.getRemainingTimeInMillis();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { first, second: ctx.getRemainingTimeInMillis(), name: ctx.functionName, memory: ctx.memoryLimitInMB };
}
