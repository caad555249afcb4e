// One-line log records on stderr, shaped like Lambda's so log tooling can parse both.

/** Logs an informational line from the shim itself. */
export function logInfo(message) {
  process.stderr.write(`${new Date().toISOString()}\thybridless\tINFO\t${message}\n`);
}

/** Logs an invocation error with its request id; detail (errorType, message, trace) goes in as JSON. */
export function logError(requestId, message, detail) {
  const suffix = detail === undefined ? '' : `\t${JSON.stringify(detail)}`;
  process.stderr.write(`${new Date().toISOString()}\t${requestId}\tERROR\t${message}${suffix}\n`);
}
