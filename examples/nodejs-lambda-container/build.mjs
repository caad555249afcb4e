// The app's build step: copies the sources to dist/ and records what was built.
// The buildpack runs it in a private copy of the app, so the source tree stays untouched.
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
for (const name of readdirSync('src')) cpSync(`src/${name}`, `dist/${name}`);
writeFileSync('dist/build-info.json', `${JSON.stringify({ builtBy: 'npm run build' })}\n`);
