// The one-shot event types (process, scheduledTask, launchableTask, job): CONTRACT §4 exit codes.
import { randomUUID } from 'node:crypto';
import { invoke } from './invoke.mjs';
import { toLambdaError } from './payloads.mjs';
import { logError } from './log.mjs';

/** Exit codes of the task event types (CONTRACT §4). */
export const EXIT = Object.freeze({ ok: 0, error: 1, status: 2, badEvent: 64 });

function parseOrRaw(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Returns [event, exitCodeIfInvalid] for an event type from argv and the environment. */
export function taskEvent(cfg) {
  const arg = cfg.argv[0];
  switch (cfg.eventType) {
    case 'scheduledTask':
      // The scheduler may hand over a plain string; only launchable tasks insist on JSON.
      if (arg !== undefined) return [parseOrRaw(arg), null];
      if (cfg.scheduleInput) return [parseOrRaw(cfg.scheduleInput), null];
      return [{}, null];
    case 'launchableTask':
    case 'job':
      if (arg === undefined || arg === '') return [{}, null];
      try {
        return [JSON.parse(arg), null];
      } catch {
        return [null, EXIT.badEvent];
      }
    default:
      // `process` has no event; an empty object keeps handlers that read event fields working.
      return [{}, null];
  }
}

function exitCodeFor(eventType, result) {
  if (eventType !== 'launchableTask' && eventType !== 'job') return EXIT.ok;
  const status = result !== null && typeof result === 'object' ? result.statusCode : undefined;
  return status === undefined || status === null || status === 200 ? EXIT.ok : EXIT.status;
}

function finish(line, code) {
  // A pipe to stdout is asynchronous: exit only once the last line is flushed.
  process.stdout.write(`${line}\n`, () => process.exit(code));
}

/** Runs the handler once for a task event type and exits with the contract's code. */
export async function runTask(cfg, handler) {
  const [event, invalid] = taskEvent(cfg);
  if (invalid !== null) {
    const error = { errorType: 'InvalidEvent', errorMessage: `the event is not valid JSON: ${cfg.argv[0]}` };
    logError('-', 'Invalid event', error);
    finish(JSON.stringify(error), invalid);
    return;
  }
  const requestId = randomUUID();
  // A handler that neither returns a promise nor calls back ends, as on Lambda, when the
  // event loop runs dry.
  let emptyLoop;
  const dry = new Promise((resolve) => {
    emptyLoop = () => resolve(undefined);
    process.once('beforeExit', emptyLoop);
  });
  try {
    const result = await Promise.race([invoke(handler, event, cfg.lambda, requestId, Date.now() + cfg.timeoutMs), dry]);
    process.off('beforeExit', emptyLoop);
    finish(JSON.stringify(result === undefined ? null : result), exitCodeFor(cfg.eventType, result));
  } catch (err) {
    process.off('beforeExit', emptyLoop);
    const error = toLambdaError(err);
    logError(requestId, 'Invoke Error', error);
    finish(JSON.stringify({ errorType: error.errorType, errorMessage: error.errorMessage }), EXIT.error);
  }
}
