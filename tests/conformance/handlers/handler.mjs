// The Node conformance handler: performs the behaviour a case names (see ../README.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const cases = new Map();

function loadCase(name) {
  if (!name) return null;
  if (!cases.has(name)) {
    // Case names come from a test request; refuse anything that could leave the directory.
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`bad case name ${name}`);
    const dir = process.env.CONFORMANCE_CASES_DIR;
    cases.set(name, JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')));
  }
  return cases.get(name);
}

function caseName(event) {
  const single = event.headers || {};
  for (const key of Object.keys(single)) {
    if (key.toLowerCase() === 'x-conformance-case') return single[key];
  }
  const multi = event.multiValueHeaders || {};
  for (const key of Object.keys(multi)) {
    if (key.toLowerCase() === 'x-conformance-case') return multi[key][0];
  }
  return null;
}

function json(value) {
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

function neutralContext(context) {
  return {
    function_name: context.functionName,
    function_version: context.functionVersion,
    invoked_function_arn: context.invokedFunctionArn,
    memory_limit_in_mb: Number(context.memoryLimitInMB),
    aws_request_id: context.awsRequestId,
    log_group_name: context.logGroupName,
    log_stream_name: context.logStreamName,
    remaining_time_in_millis: context.getRemainingTimeInMillis(),
  };
}

// Settles exactly the way the behaviour says, through the matching Lambda handler style.
function perform(behavior, event, context, callback) {
  if (behavior.sleep_ms !== undefined) {
    setTimeout(() => {
      try {
        perform(behavior.then || { echo: true }, event, context, callback);
      } catch (err) {
        callback(err);
      }
    }, behavior.sleep_ms);
    return;
  }
  if ('return' in behavior) return void callback(null, behavior.return);
  if ('throw' in behavior) throw new Error(behavior.throw);
  if ('reject' in behavior) return void callback(new Error(behavior.reject));
  if ('callback' in behavior) return void setImmediate(() => callback(null, behavior.callback));
  if ('callback_error' in behavior) return void setImmediate(() => callback(new Error(behavior.callback_error)));
  if ('succeed' in behavior) return void context.succeed(behavior.succeed);
  if ('fail' in behavior) return void context.fail(new Error(behavior.fail));
  if (behavior.context) {
    const requestId = event.requestContext ? event.requestContext.requestId : undefined;
    return void callback(null, json({ context: neutralContext(context), event_request_id: requestId }));
  }
  callback(null, json(event));
}

// Promise-returning behaviours go through an async path so the shim sees a real rejection.
function isPromiseStyle(behavior) {
  return 'return' in behavior || 'reject' in behavior || behavior.echo || behavior.context
    || (behavior.sleep_ms !== undefined && isPromiseStyle(behavior.then || { echo: true }));
}

export function handler(event, context, callback) {
  const spec = loadCase(caseName(event));
  const behavior = (spec && spec.behavior) || { echo: true };
  if (!isPromiseStyle(behavior)) return perform(behavior, event, context, callback);
  return new Promise((resolve, reject) => {
    perform(behavior, event, context, (err, result) => (err ? reject(err) : resolve(result)));
  });
}
