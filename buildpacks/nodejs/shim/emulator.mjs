// The lambdaContainer event type without Lambda: AWS's local emulator endpoint.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { invoke } from './invoke.mjs';
import { errorBody, toLambdaError } from './payloads.mjs';
import { logError, logInfo } from './log.mjs';

const EMULATOR_PATH = '/2015-03-31/functions/function/invocations';

/** Serves AWS's local emulator endpoint (POST EMULATOR_PATH) for images run without Lambda. */
export function startEmulator(cfg, handler) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const reply = (status, value, extraHeaders = {}) => {
        const body = Buffer.from(JSON.stringify(value === undefined ? null : value));
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length, ...extraHeaders });
        res.end(body);
      };
      if (req.method !== 'POST' || req.url.split('?')[0] !== EMULATOR_PATH) {
        reply(404, { message: `only POST ${EMULATOR_PATH} is served here` });
        return;
      }
      let event;
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        event = text.trim() === '' ? {} : JSON.parse(text);
      } catch {
        reply(400, { errorType: 'InvalidRequestContentException', errorMessage: 'Could not parse request body into json' });
        return;
      }
      const requestId = randomUUID();
      const timeoutMs = cfg.emulatorTimeoutMs;
      let timer;
      const timedOut = new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs, 'timeout');
      });
      try {
        const outcome = await Promise.race([invoke(handler, event, cfg.lambda, requestId, Date.now() + timeoutMs).then((r) => ({ r })), timedOut]);
        if (outcome === 'timeout') {
          const message = `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`;
          logError(requestId, message);
          reply(200, { errorType: 'Sandbox.Timedout', errorMessage: message }, { 'x-amz-function-error': 'Unhandled' });
        } else {
          reply(200, outcome.r);
        }
      } catch (err) {
        logError(requestId, 'Invoke Error', toLambdaError(err));
        reply(200, errorBody(err), { 'x-amz-function-error': 'Unhandled' });
      } finally {
        clearTimeout(timer);
      }
    });
  });
  const port = cfg.port;
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      logInfo(`Lambda emulator listening on port ${server.address().port}: POST ${EMULATOR_PATH}`);
      resolve(server);
    });
  });
}
