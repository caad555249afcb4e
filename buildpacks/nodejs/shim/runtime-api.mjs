// The lambdaContainer event type: a Lambda Runtime API client, or AWS's local emulator endpoint.
import { Agent, createServer, request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { invoke, toLambdaError } from './context.mjs';
import { logError, logInfo } from './log.mjs';

const API = '/2018-06-01/runtime';
const EMULATOR_PATH = '/2015-03-31/functions/function/invocations';
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function call(host, method, path, body, headers = {}) {
  const [hostname, port] = host.split(':');
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port: Number(port || 80), method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorBody(err) {
  const error = toLambdaError(err);
  // Node's runtime client sends `trace`; REFERENCE §3 also names `stackTrace`. Send both.
  return { errorType: error.errorType, errorMessage: error.errorMessage, trace: error.trace, stackTrace: error.trace };
}

async function postError(host, path, err) {
  const body = errorBody(err);
  await call(host, 'POST', path, JSON.stringify(body), {
    'content-type': 'application/json',
    'lambda-runtime-function-error-type': body.errorType,
  });
}

/** Reports a handler that failed to load to /runtime/init/error; the caller then exits. */
export async function reportInitError(cfg, err) {
  await postError(cfg.runtimeApi, `${API}/init/error`, err);
}

function jsonHeader(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

/** Polls /runtime/invocation/next forever, invoking the handler and posting each outcome. */
export async function runRuntimeClient(cfg, handler) {
  const host = cfg.runtimeApi;
  logInfo(`Runtime API client polling ${host}`);
  for (;;) {
    const next = await call(host, 'GET', `${API}/invocation/next`);
    if (next.status !== 200) throw new Error(`GET invocation/next answered ${next.status}: ${next.body}`);
    const h = next.headers;
    const requestId = h['lambda-runtime-aws-request-id'];
    const deadline = Number(h['lambda-runtime-deadline-ms']) || Date.now() + cfg.timeoutMs;
    if (h['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
    else delete process.env._X_AMZN_TRACE_ID;
    const lambda = h['lambda-runtime-invoked-function-arn']
      ? { ...cfg.lambda, invokedFunctionArn: h['lambda-runtime-invoked-function-arn'] }
      : cfg.lambda;
    const extra = {
      clientContext: jsonHeader(h['lambda-runtime-client-context']),
      identity: jsonHeader(h['lambda-runtime-cognito-identity']),
    };
    const base = `${API}/invocation/${encodeURIComponent(requestId)}`;
    let event;
    try {
      event = JSON.parse(next.body.toString('utf8') || '{}');
    } catch (err) {
      const parseError = Object.assign(new Error(`could not parse the event: ${err.message}`), { name: 'Runtime.UnmarshalError' });
      await postError(host, `${base}/error`, parseError);
      continue;
    }
    try {
      const result = await invoke(handler, event, lambda, requestId, deadline, extra);
      const body = JSON.stringify(result === undefined ? null : result);
      await call(host, 'POST', `${base}/response`, body, { 'content-type': 'application/json' });
    } catch (err) {
      logError(requestId, 'Invoke Error', toLambdaError(err));
      await postError(host, `${base}/error`, err);
    }
  }
}

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
