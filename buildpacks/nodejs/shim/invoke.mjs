// The one function that runs a handler in any of its styles, and its promise form.
import { Context } from './context.mjs';

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
