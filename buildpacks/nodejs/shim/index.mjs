// Entry point of the Node shim: loads the handler, then runs the configured event type.
import { SettingsError, loadSettings } from './settings.mjs';
import { loadHandler } from './loader.mjs';
import { startHttpd } from './httpd.mjs';
import { runTask } from './tasks.mjs';
import { reportInitError, runRuntimeClient } from './runtime_api.mjs';
import { startEmulator } from './emulator.mjs';
import { logInfo } from './log.mjs';

/** Exit code when the shim cannot start: bad settings or a handler that does not load. */
const EXIT_START_FAILED = 1;

function fail(message) {
  process.stderr.write(`hybridless: ${message}\n`);
  process.exitCode = EXIT_START_FAILED;
}

async function main() {
  let cfg;
  try {
    cfg = loadSettings();
  } catch (err) {
    if (err instanceof SettingsError) return fail(`invalid configuration: ${err.message}`);
    throw err;
  }
  const name = `${cfg.handler.file}.${cfg.handler.func}`;
  let handler;
  try {
    handler = await loadHandler(cfg.taskRoot, cfg.handler);
  } catch (err) {
    const cause = err.cause && err.cause.stack ? `\n${err.cause.stack}` : '';
    fail(`failed to load handler ${name} from ${cfg.taskRoot}: ${err.errorType || err.name}: ${err.message}${cause}`);
    if (cfg.eventType === 'lambdaContainer' && cfg.runtimeApi) await reportInitError(cfg, err).catch(() => {});
    return undefined;
  }
  logInfo(`loaded handler ${name} for ${cfg.eventType}`);
  switch (cfg.eventType) {
    case 'httpd':
      await startHttpd(cfg, handler);
      return undefined;
    case 'lambdaContainer':
      if (cfg.runtimeApi) await runRuntimeClient(cfg, handler);
      else await startEmulator(cfg, handler);
      return undefined;
    default:
      await runTask(cfg, handler);
      return undefined;
  }
}

main().catch((err) => {
  fail(`unexpected error: ${err && err.stack ? err.stack : err}`);
  process.exit(EXIT_START_FAILED);
});
