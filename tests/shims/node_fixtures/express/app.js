// An ordinary Express app exposed as a Lambda handler through serverless-http.
const express = require('express');
const serverless = require('serverless-http');

const app = express();

app.get('/hello/:name', (req, res) => {
  res.json({
    name: req.params.name,
    path: req.path,
    query: req.query,
    dup: req.get('x-dup'),
    cookie: req.get('cookie') || null,
    method: req.method,
  });
});

app.post('/echo', express.raw({ type: () => true, limit: '10mb' }), (req, res) => {
  res.type(req.get('content-type') || 'application/octet-stream');
  res.send(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
});

app.get('/cookies', (req, res) => {
  res.cookie('a', '1');
  res.cookie('b', '2', { httpOnly: true });
  res.send('cookies set');
});

app.get('/png', (req, res) => {
  res.type('image/png').send(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0x10]));
});

app.get('/status/:code', (req, res) => {
  res.status(Number(req.params.code)).send(`status ${req.params.code}`);
});

module.exports.handler = serverless(app, { binary: ['image/*', 'application/octet-stream'] });
