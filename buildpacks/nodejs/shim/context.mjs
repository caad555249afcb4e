// The Lambda context object a handler receives.
import { randomBytes } from 'node:crypto';

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
