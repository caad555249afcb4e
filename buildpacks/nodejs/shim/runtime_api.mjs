// The lambdaContainer event type under Lambda: a Runtime API client.
import { Agent, request } from 'node:http';
import { invoke } from './invoke.mjs';
import { errorBody, toLambdaError } from './payloads.mjs';
import { logError, logInfo } from './log.mjs';

const API = '/2018-06-01/runtime';
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
