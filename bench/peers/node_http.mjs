// A bare node:http server: the ceiling the Node shim's throughput is measured against.
//
// It answers every request with the bytes the shim sends for the benchmark's trivial
// handler (same status, content type, body and length), so the gap between the two is the
// shim's own work: event building, the handler call and the response mapping.
//
//   PORT=8081 BODY='{"message":"hello"}' node bench/peers/node_http.mjs
import { createServer } from 'node:http';

// A string body: node:http writes it together with the head in one syscall, where a Buffer
// body goes out as a second chunk. This is the fastest plain node:http answer, so the peer
// sets the bar as high as it goes.
const body = process.env.BODY || '{"message":"hello"}';
const length = Buffer.byteLength(body);
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': length });
  res.end(body);
});
// The shim keeps connections longer than a load balancer's idle timeout; match it.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(process.env.PORT || 8081), () => {
  process.stderr.write(`bare node:http listening on ${server.address().port}\n`);
});
process.once('SIGTERM', () => process.exit(0));
