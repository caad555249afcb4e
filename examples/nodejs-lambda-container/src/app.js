// A Lambda handler for a container image function; built into dist/ by `npm run build`.
import { readFileSync } from 'node:fs';

const info = JSON.parse(readFileSync(new URL('./build-info.json', import.meta.url), 'utf8'));

export const handler = async (event, context) => {
  if (event.fail) throw new TypeError('failed on purpose');
  return {
    greeting: `hello, ${event.name ?? 'world'}`,
    builtBy: info.builtBy,
    functionName: context.functionName,
    remainingMs: context.getRemainingTimeInMillis() > 0,
  };
};
