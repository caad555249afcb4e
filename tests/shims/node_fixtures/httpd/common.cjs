// A CommonJS handler, to prove dynamic import() loads .cjs modules.
exports.handler = async (event) => ({ statusCode: 200, body: `cjs ${event.path}` });
