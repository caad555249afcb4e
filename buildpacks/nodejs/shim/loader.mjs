// Finds and imports the user's handler the way Lambda's Node runtime does.
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A handler that could not be loaded; errorType uses the names Lambda reports for the same failure. */
export class HandlerLoadError extends Error {
  constructor(errorType, message, cause) {
    super(message, cause ? { cause } : undefined);
    this.name = errorType;
    this.errorType = errorType;
  }
}

const SUFFIXES = ['', '.js', '.mjs', '.cjs'];

function isFile(path) {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Returns the first existing file for a handler path without extension, or null. */
export function resolveHandlerFile(taskRoot, file) {
  const base = resolve(taskRoot, file);
  for (const suffix of SUFFIXES) {
    if (isFile(base + suffix)) return base + suffix;
  }
  for (const suffix of SUFFIXES.slice(1)) {
    const index = join(base, `index${suffix}`);
    if (isFile(index)) return index;
  }
  return null;
}

/** Imports the handler module (CJS or ESM) and returns its exported function. */
export async function loadHandler(taskRoot, { file, func }) {
  const path = resolveHandlerFile(taskRoot, file);
  const name = `${file}.${func}`;
  if (!path) {
    throw new HandlerLoadError('Runtime.ImportModuleError',
      `Error: Cannot find module '${file}' (tried ${SUFFIXES.map((s) => file + s).join(', ')} and ${file}/index.*) under ${taskRoot}`);
  }
  let mod;
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (err) {
    const type = err instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError';
    throw new HandlerLoadError(type, `${err.name}: ${err.message}`, err);
  }
  // CJS exports the lexer cannot see (module.exports = computed) are only on `default`.
  let fn = mod[func];
  if (fn === undefined && mod.default && typeof mod.default === 'object') fn = mod.default[func];
  if (typeof fn !== 'function') {
    throw new HandlerLoadError('Runtime.HandlerNotFound', `${name} is undefined or not exported`);
  }
  return fn;
}
