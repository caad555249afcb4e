// Hostile-handler fixture: returns the result named by the x-hostile header (see results.json).
import { readFileSync } from 'node:fs';

const RESULTS = JSON.parse(readFileSync(new URL('./results.json', import.meta.url), 'utf8'));

export async function handler(event) {
  const headers = event.headers || event.multiValueHeaders || {};
  let name = headers['x-hostile'] ?? headers['X-Hostile'] ?? 'fine';
  if (Array.isArray(name)) name = name[name.length - 1];
  if (name === 'sleep') {
    // Holds the call, not the loop: Node frees the slot at TIMEOUT, the call stays stuck.
    await new Promise((resolve) => { setTimeout(resolve, 1500); });
    return { statusCode: 200, body: 'late' };
  }
  return RESULTS[name];
}
