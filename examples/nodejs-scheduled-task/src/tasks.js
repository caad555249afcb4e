// Task handlers: their exit code tells the scheduler whether the run succeeded.
'use strict';

// Runs on a schedule with the rule's input; throwing makes the task exit 1.
exports.nightly = async (input, context) => {
  if (input.fail) {
    throw new Error(`job ${input.job} failed on purpose`);
  }
  console.error(`running ${input.job} as ${context.functionName}`);
  return { processed: input.job };
};

// Runs once with the event given as the first argument; a statusCode other than 200 exits 2.
exports.onDemand = async (event) => {
  if (event.throw) {
    throw new Error('asked to throw');
  }
  return { statusCode: event.statusCode ?? 200, body: JSON.stringify({ echoed: event }) };
};
