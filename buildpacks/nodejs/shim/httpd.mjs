// The httpd event type: a node:http server turning each request into a Lambda invocation.
// Imported, not the global: the global Buffer is a getter, called on every use.
import { Buffer } from 'node:buffer';
import { createServer } from 'node:http';
import { eventBuilder, firstHeader, requestUuid } from './events/index.mjs';
import { invokeWith } from './invoke.mjs';
import { toLambdaError } from './payloads.mjs';
import { toHttpResponse } from './response.mjs';
import { decorate, preflightHeaders } from './cors.mjs';
import { logError, logInfo } from './log.mjs';
import { DeadlineQueue } from './deadlines.mjs';

const JSON_TYPE = 'application/json';
// Strings, not Buffers: see toHttpResponse on why node:http sends them faster.
const BAD_GATEWAY = '{"message":"Internal server error"}';
const GATEWAY_TIMEOUT = '{"message":"Endpoint request timed out"}';
const TOO_LARGE = '{"message":"Request Entity Too Large"}';
// What an ALB itself answers when its Lambda target fails: a small HTML page, not JSON.
const ALB_BAD_GATEWAY = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n'
  + '<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n';
const HEALTHY = 'Healthy!';
const WEDGED = 'Unhealthy: every invocation slot is stuck past TIMEOUT';
const EMPTY = '';
// Outlast an ALB's 60 s idle timeout, so the load balancer, not us, closes idle connections.
const KEEP_ALIVE_MS = 65_000;
// How much of an oversized body we read and discard before answering 413, so the client
// gets the answer instead of a connection reset.
const DRAIN_SLACK = 1 << 20;

/** Starts the HTTP server; resolves once it listens. */
export function startHttpd(cfg, handler) {
  const build = eventBuilder(cfg);
  const { cors, healthRoute, bodyLimit, timeoutMs, concurrency, httpFormat, lambda } = cfg;
  const deadlines = new DeadlineQueue(timeoutMs);
  const queue = [];
  let inFlight = 0;
  // Handler calls past their deadline that have not settled. Their slots were given back at
  // the deadline so queued requests can run, but the calls still hold whatever they wait on;
  // when there are as many as slots, the health route says so (a load balancer then
  // replaces the task).
  let stuck = 0;
  // Requests received and not yet answered, and answers still flushing while we drain.
  let active = 0;
  let flushing = 0;
  let draining = false;

  function exitWhenIdle() {
    if (active === 0 && flushing === 0) {
      logInfo('drained in-flight requests; exiting');
      process.exit(0);
    }
  }

  function flushed() {
    flushing -= 1;
    exitWhenIdle();
  }

  function answered(res) {
    active -= 1;
    if (!draining) return;
    // Exit only once the last answer has left the process, not merely been queued.
    flushing += 1;
    res.once('close', flushed);
  }

  /**
   * Every answer goes through here exactly once: it keeps `active` true for the drain. headers
   * is a flat [name, value, …] list without content-length, which is added here.
   */
  function send(res, statusCode, reason, headers, body) {
    headers.push('content-length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
    if (draining) headers.push('connection', 'close');
    if (reason === undefined) res.writeHead(statusCode, headers);
    else res.writeHead(statusCode, reason, headers);
    res.end(body);
    answered(res);
  }

  function sendJson(res, statusCode, body, close = false) {
    const headers = ['content-type', JSON_TYPE];
    // While draining, send adds its own "connection: close".
    if (close && !draining) headers.push('connection', 'close');
    send(res, statusCode, undefined, headers, body);
  }

  const isAlb = httpFormat === 'alb' || httpFormat === 'alb-multi';

  /** The 502 of the product in front: API Gateway's JSON message, or the ALB's HTML page. */
  function sendBadGateway(res) {
    if (isAlb) send(res, 502, undefined, ['content-type', 'text/html'], ALB_BAD_GATEWAY);
    else sendJson(res, 502, BAD_GATEWAY);
  }

  function release() {
    inFlight -= 1;
    const next = queue.shift();
    if (next !== undefined) run(next[0], next[1], next[2]);
  }

  /** One request's invocation; it is its own deadline entry, so a request costs no extra closures. */
  class Invocation {
    constructor(req, res, requestId) {
      this.req = req;
      this.res = res;
      this.requestId = requestId;
      this.finished = false;
      this.overdue = false;
      this.due = 0;
    }

    expire() {
      this.finished = true;
      this.overdue = true;
      stuck += 1;
      logError(this.requestId, `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
      sendJson(this.res, 504, GATEWAY_TIMEOUT);
      release();
    }

    complete(err, result) {
      if (this.finished) {
        // A call that settles after its deadline is no longer stuck.
        if (this.overdue) {
          this.overdue = false;
          stuck -= 1;
        }
        return;
      }
      this.finished = true;
      deadlines.remove(this);
      if (err !== null) {
        logError(this.requestId, 'Invoke Error', toLambdaError(err));
        sendBadGateway(this.res);
      } else {
        respond(this.req, this.res, this.requestId, result);
      }
      release();
    }
  }

  function run(req, res, body) {
    inFlight += 1;
    const now = Date.now();
    const requestId = requestUuid();
    let event;
    try {
      event = build(req, body, now, requestId);
    } catch (err) {
      // A request we cannot map is our bug, but it must cost one 502, not the process.
      logError('-', 'failed to build the event', toLambdaError(err));
      sendBadGateway(res);
      release();
      return;
    }
    const invocation = new Invocation(req, res, requestId);
    deadlines.add(invocation);
    invokeWith(handler, event, lambda, requestId, now + timeoutMs, undefined, invocation);
  }

  function respond(req, res, requestId, result) {
    let response;
    try {
      response = toHttpResponse(result, httpFormat);
      if (cors) decorate(cors, firstHeader(req.rawHeaders, 'origin'), response.headers);
    } catch (err) {
      logError(requestId, 'Invoke Error', toLambdaError(err));
      sendBadGateway(res);
      return;
    }
    try {
      send(res, response.statusCode, response.reason, response.headers, response.body);
    } catch (err) {
      // Node refused a header name or value the handler returned.
      logError(requestId, 'Invoke Error', toLambdaError(err));
      if (res.headersSent) {
        res.destroy();
        answered(res);
      } else {
        // The refused writeHead already set the reason phrase ("OK"); let the 502 pick its own.
        res.statusMessage = undefined;
        sendBadGateway(res);
      }
    }
  }

  function admit(req, res, body) {
    // Beyond the limit, requests wait in arrival order rather than failing: a load balancer
    // retrying a 503 would only add load, and its own timeout bounds the wait.
    if (inFlight < concurrency) run(req, res, body);
    else queue.push([req, res, body]);
  }

  function readBody(req, res, declared) {
    if (declared > bodyLimit + DRAIN_SLACK) {
      sendJson(res, 413, TOO_LARGE, true);
      return;
    }
    const chunks = [];
    let size = 0;
    let gone = false;
    const abandon = () => {
      if (gone) return;
      gone = true;
      answered(res);
    };
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= bodyLimit) chunks.push(chunk);
      else if (size > bodyLimit + DRAIN_SLACK) {
        req.destroy();
        abandon();
      }
    });
    // A client that disconnects mid-body never gets an answer; count it as answered.
    req.on('aborted', abandon);
    req.on('end', () => {
      if (gone) return;
      gone = true;
      if (size > bodyLimit) sendJson(res, 413, TOO_LARGE, true);
      else admit(req, res, size === 0 ? null : Buffer.concat(chunks, size));
    });
  }

  function onRequest(req, res) {
    active += 1;
    const raw = req.rawHeaders;
    if (healthRoute !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      const q = req.url.indexOf('?');
      if ((q === -1 ? req.url : req.url.slice(0, q)) === healthRoute) {
        if (stuck >= concurrency) send(res, 503, undefined, ['content-type', 'text/plain; charset=utf-8'], WEDGED);
        else send(res, 200, undefined, ['content-type', 'text/plain; charset=utf-8'], HEALTHY);
        return;
      }
    }
    if (cors && req.method === 'OPTIONS') {
      const origin = firstHeader(raw, 'origin');
      if (origin !== undefined && firstHeader(raw, 'access-control-request-method') !== undefined) {
        send(res, 204, undefined, preflightHeaders(cors, origin), EMPTY);
        return;
      }
    }
    const length = firstHeader(raw, 'content-length');
    if (length === undefined && firstHeader(raw, 'transfer-encoding') === undefined) {
      admit(req, res, null);
    } else {
      readBody(req, res, Number(length ?? 0));
    }
  }

  const server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS }, onRequest);
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  // Headers must be allowed to arrive slower than the keep-alive window, or Node cuts
  // a reused connection the load balancer still considers open.
  server.headersTimeout = KEEP_ALIVE_MS + 1000;
  server.requestTimeout = Math.max(300_000, timeoutMs + KEEP_ALIVE_MS);

  function drain(signal) {
    if (draining) return;
    draining = true;
    logInfo(`${signal}: no longer accepting connections; draining ${active} in-flight request(s)`);
    server.close();
    if (typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
    exitWhenIdle();
  }
  process.once('SIGTERM', () => drain('SIGTERM'));
  process.once('SIGINT', () => drain('SIGINT'));

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, () => {
      server.off('error', reject);
      logInfo(`httpd listening on port ${server.address().port} (${httpFormat}, concurrency ${concurrency}, timeout ${timeoutMs} ms)`);
      resolve(server);
    });
  });
}
