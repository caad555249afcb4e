// The Express app: plain Express, unaware of Lambda.
import express from 'express';

export const app = express();

// A tiny PNG (1x1, transparent): bytes that are not valid UTF-8.
const PIXEL = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

app.get('/hello', (req, res) => {
  res.json({ method: req.method, path: req.path, query: req.query });
});

app.get('/headers', (req, res) => {
  res.json({ multi: req.headers['x-multi'] ?? null, single: req.headers['x-single'] ?? null });
});

app.get('/cookies', (req, res) => {
  res.cookie('session', 'abc', { httpOnly: true });
  res.cookie('theme', 'dark');
  res.json({ received: req.headers.cookie ?? null });
});

app.post('/echo', express.raw({ type: '*/*', limit: '1mb' }), (req, res) => {
  res.type('application/octet-stream').send(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
});

app.get('/pixel', (req, res) => {
  res.type('image/png').send(PIXEL);
});

app.get('/slow', async (req, res) => {
  await new Promise((resolve) => setTimeout(resolve, 5000));
  res.json({ late: true });
});

app.get('/teapot', (req, res) => {
  res.status(418).json({ error: "I'm a teapot" });
});
