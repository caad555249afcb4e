// Errors as Lambda reports them: the shape handlers' failures are logged and posted in.

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

/** The error body the Runtime API and the emulator send: toLambdaError's fields plus stackTrace. */
export function errorBody(err) {
  const error = toLambdaError(err);
  // Node's runtime client sends `trace`; REFERENCE §3 also names `stackTrace`. Send both.
  return { errorType: error.errorType, errorMessage: error.errorMessage, trace: error.trace, stackTrace: error.trace };
}
