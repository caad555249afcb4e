// Serve a directory on $PORT with node:http (Node 18+), answering $HEALTH_ROUTE "Healthy!".
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(process.argv[2]);
const port = Number(process.env.PORT || 8080);
const healthRoute = process.env.HEALTH_ROUTE || '';
const types = {
  '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript',
  '.mjs': 'text/javascript', '.json': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.gif': 'image/gif', '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8', '.woff2': 'font/woff2', '.wasm': 'application/wasm',
};

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const pathname = decodeURIComponent((req.url || '/').split('?')[0]);
  if (healthRoute && pathname === healthRoute) return send(res, 200, 'Healthy!');
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Method Not Allowed');
  let file = path.join(root, pathname);
  // path.join normalises "..", so anything outside root was an escape attempt.
  if (file !== root && !file.startsWith(root + path.sep)) return send(res, 404, 'Not Found');
  fs.stat(file, (err, stat) => {
    if (!err && stat.isDirectory()) file = path.join(file, 'index.html');
    fs.stat(file, (err2, st) => {
      if (err2 || !st.isFile()) return send(res, 404, 'Not Found');
      res.writeHead(200, {
        'Content-Type': types[path.extname(file)] || 'application/octet-stream',
        'Content-Length': st.size,
      });
      if (req.method === 'HEAD') return res.end();
      fs.createReadStream(file).pipe(res);
    });
  });
});

server.listen(port, () => console.error(`static-site: node serving ${root} on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
