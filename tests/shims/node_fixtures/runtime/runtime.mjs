// Handler for the lambdaContainer tests: reports what it saw, fails for order 2, sleeps on request.
export async function handler(event, context) {
  if (event.sleep) await new Promise((resolve) => setTimeout(resolve, event.sleep));
  if (event.order === 2) throw new RangeError('order 2 is out of range');
  return {
    event,
    requestId: context.awsRequestId,
    arn: context.invokedFunctionArn,
    remaining: context.getRemainingTimeInMillis(),
    clientContext: context.clientContext,
    traceId: process.env._X_AMZN_TRACE_ID,
    functionName: context.functionName,
    memory: context.memoryLimitInMB,
  };
}
