// Reads the run-time environment (CONTRACT §4) once, at start, into a frozen settings object.

const EVENT_TYPES = ['httpd', 'process', 'scheduledTask', 'launchableTask', 'job', 'lambdaContainer'];
const HTTP_FORMATS = ['apigw-v1', 'apigw-v2', 'alb', 'alb-multi'];

/** Raised for a setting the shim cannot run with; index.mjs logs it and exits non-zero. */
export class SettingsError extends Error {}

function integer(env, name, fallback, min = 0) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new SettingsError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function oneOf(env, name, allowed, fallback) {
  const value = env[name] || fallback;
  if (!allowed.includes(value)) {
    throw new SettingsError(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function parseCors(raw) {
  if (!raw) return null;
  let cors;
  try {
    cors = JSON.parse(raw);
  } catch (err) {
    throw new SettingsError(`CORS is not valid JSON: ${err.message}`);
  }
  if (cors === null || typeof cors !== 'object' || Array.isArray(cors)) {
    throw new SettingsError('CORS must be a JSON object like {"origin": "*", "headers": [], "allowCredentials": false}');
  }
  const origins = Array.isArray(cors.origin) ? cors.origin.map(String) : [String(cors.origin ?? '*')];
  const headers = Array.isArray(cors.headers) ? cors.headers.map(String) : [];
  return Object.freeze({
    anyOrigin: origins.includes('*'),
    origins: new Set(origins),
    allowHeaders: headers.join(','),
    allowCredentials: cors.allowCredentials === true || cors['allow-credentials'] === true,
  });
}

/** Returns the handler's file (relative to the task root) and export name from the environment. */
function handlerSpec(env, argv, eventType) {
  // On Lambda the handler string arrives as the image CMD (argv) or in _HANDLER.
  const fromString = (text) => {
    const dot = text.lastIndexOf('.');
    return dot > 0 ? { file: text.slice(0, dot), func: text.slice(dot + 1) } : null;
  };
  if (eventType === 'lambdaContainer' && argv[0]) return fromString(argv[0]);
  if (env.ENTRYPOINT) return { file: env.ENTRYPOINT, func: env.ENTRYPOINT_FUNC || 'handler' };
  if (env._HANDLER) return fromString(env._HANDLER);
  return null;
}

/** Builds the shim's settings from an environment and the program arguments after the script. */
export function loadSettings(env = process.env, argv = process.argv.slice(2)) {
  const eventType = oneOf(env, 'HYBRIDLESS_EVENT_TYPE', EVENT_TYPES, 'httpd');
  const handler = handlerSpec(env, argv, eventType);
  if (!handler) {
    throw new SettingsError('no handler given: set ENTRYPOINT (e.g. src/handler) and ENTRYPOINT_FUNC (e.g. handler)');
  }
  const functionName = env.AWS_LAMBDA_FUNCTION_NAME || (eventType === 'lambdaContainer' ? 'test_function' : 'function');
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  // No account id is knowable inside a container; a fixed, well-formed placeholder keeps parsers happy.
  const accountId = '000000000000';
  const memory = env.MEMORY || env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || (eventType === 'lambdaContainer' ? '3008' : '1024');
  const version = env.AWS_LAMBDA_FUNCTION_VERSION || '$LATEST';
  return Object.freeze({
    eventType,
    handler,
    taskRoot: env.LAMBDA_TASK_ROOT || process.cwd(),
    port: integer(env, 'PORT', 8080, 0),
    healthRoute: env.HEALTH_ROUTE || null,
    timeoutMs: integer(env, 'TIMEOUT', 30000, 1),
    cors: parseCors(env.CORS),
    stage: env.STAGE || '$default',
    httpFormat: oneOf(env, 'HYBRIDLESS_HTTP_FORMAT', HTTP_FORMATS, 'apigw-v1'),
    bodyLimit: integer(env, 'HYBRIDLESS_BODY_LIMIT', 6291456, 0),
    concurrency: integer(env, 'HYBRIDLESS_CONCURRENCY', 64, 1),
    scheduleInput: env.HYBRIDLESS_SCHEDULE_INPUT,
    runtimeApi: env.AWS_LAMBDA_RUNTIME_API || null,
    emulatorTimeoutMs: env.AWS_LAMBDA_FUNCTION_TIMEOUT
      ? integer(env, 'AWS_LAMBDA_FUNCTION_TIMEOUT', 300, 1) * 1000
      : integer(env, 'TIMEOUT', 300000, 1),
    argv,
    lambda: Object.freeze({
      functionName,
      functionVersion: version,
      invokedFunctionArn: `arn:aws:lambda:${region}:${accountId}:function:${functionName}`,
      memoryLimitInMB: String(memory),
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME || `/aws/lambda/${functionName}`,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME || null,
      region,
      accountId,
    }),
  });
}
