// Handlers for the task event type tests: each export settles one way.

export async function echo(event) {
  return event;
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

