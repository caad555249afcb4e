// Task handlers for the tests both shims share (test_both.py); task.py is the same in Python.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class TaskError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TaskError';
  }
}

/** Succeeds with statusCode 200 and the event. */
export async function ok(event) {
  return { statusCode: 200, event };
}

/** Succeeds without a statusCode. */
export async function no_status() {
  return { done: true };
}

/** Returns a status other than 200. */
export async function not_found() {
  return { statusCode: 404, body: 'missing' };
}

/** Prints a line, then fails. */
export async function boom() {
  console.log('a line the handler printed');
  throw new TaskError('task exploded');
}

/** Writes the event it got to stderr (scheduled tasks' stdout differs between the shims). */
export async function show(event) {
  process.stderr.write(`EVENT ${JSON.stringify(event)}\n`);
  return null;
}

/** The remaining time before and after a 200 ms wait, and the context's names. */
export async function context(event, ctx) {
  const first = ctx.getRemainingTimeInMillis();
  await sleep(200);
  return { first, second: ctx.getRemainingTimeInMillis(), name: ctx.functionName, memory: ctx.memoryLimitInMB };
}
