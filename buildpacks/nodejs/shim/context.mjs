// The Lambda context object and the one function that runs a handler in any of its styles.
import { randomBytes } from 'node:crypto';

/** Error a handler rejected or threw, flattened to Lambda's {errorType, errorMessage, trace} shape. */
export function toLambdaError(err) {
  if (err instanceof Error) {
    const trace = typeof err.stack === 'string' ? err.stack.split('\n') : [];
    return { errorType: err.errorType || err.name || 'Error', errorMessage: err.message, trace };
  }
  // Lambda reports non-Error rejections (strings, objects) as their JSON text.
  let message;
  try {
    message = typeof err === 'string' ? err : JSON.stringify(err);
  } catch {
    message = String(err);
  }
  return { errorType: typeof err === 'string' ? 'string' : 'Error', errorMessage: message ?? String(err), trace: [] };
}

function logStreamName() {
  const now = new Date();
  const day = now.toISOString().slice(0, 10).replaceAll('-', '/');
  return `${day}/[$LATEST]${randomBytes(16).toString('hex')}`;
}

/** One invocation's context: the fields of REFERENCE §3 plus succeed/fail/done. */
export class Context {
  constructor(lambda, awsRequestId, deadlineMs, settle) {
    this.callbackWaitsForEmptyEventLoop = true;
    this.functionName = lambda.functionName;
    this.functionVersion = lambda.functionVersion;
    this.invokedFunctionArn = lambda.invokedFunctionArn;
    this.memoryLimitInMB = lambda.memoryLimitInMB;
    this.awsRequestId = awsRequestId;
    this.logGroupName = lambda.logGroupName;
    this.logStreamName = lambda.logStreamName || defaultStream();
    this.identity = undefined;
    this.clientContext = undefined;
    this._deadlineMs = deadlineMs;
    this._settle = settle;
  }

  /** Milliseconds left before the invocation times out, never negative. */
  getRemainingTimeInMillis() {
    return Math.max(0, this._deadlineMs - Date.now());
  }

  /** Legacy completion: ends the invocation with a result. */
  succeed(result) {
    this._settle(null, result);
  }

  /** Legacy completion: ends the invocation with an error. */
  fail(err) {
    this._settle(err ?? new Error('handled'), undefined);
  }

  /** Legacy completion: callback-shaped. */
  done(err, result) {
    this._settle(err, result);
  }
}

// The stream name stays fixed for the life of the process, as one Lambda sandbox's does.
let stream = null;
function defaultStream() {
  stream ??= logStreamName();
  return stream;
}

/**
 * Runs handler(event, context, callback) and calls target.complete(err, result) exactly once,
 * whichever way the handler settles first: returned promise, callback, context.succeed/fail/done,
 * or a plain return value from a handler that takes no callback. Returns the context. A target
 * object rather than a callback lets httpd reuse its per-request object instead of a closure.
 */
export function invokeWith(handler, event, lambda, awsRequestId, deadlineMs, extra, target) {
  let settled = false;
  const settle = (err, result) => {
    if (settled) return;
    settled = true;
    // Lambda treats any truthy-ish first callback argument as an error.
    if (err !== null && err !== undefined) target.complete(err, undefined);
    else target.complete(null, result);
  };
  const context = new Context(lambda, awsRequestId, deadlineMs, settle);
  if (extra) Object.assign(context, extra);
  let returned;
  try {
    returned = handler(event, context, settle);
  } catch (err) {
    settle(err ?? new Error('thrown'));
    return context;
  }
  if (returned !== null && typeof returned === 'object' && typeof returned.then === 'function') {
    returned.then((value) => settle(null, value), (err) => settle(err ?? new Error('rejected')));
  } else if (returned !== undefined && handler.length < 3) {
    settle(null, returned);
  }
  return context;
}

/** Promise form of invokeWith, for the event types where one extra allocation does not matter. */
export function invoke(handler, event, lambda, awsRequestId, deadlineMs, extra) {
  return new Promise((resolve, reject) => {
    invokeWith(handler, event, lambda, awsRequestId, deadlineMs, extra, {
      complete(err, result) {
        if (err !== null) reject(err);
        else resolve(result);
      },
    });
  });
}
