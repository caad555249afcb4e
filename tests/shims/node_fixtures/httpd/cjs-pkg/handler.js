// A .js file in a CommonJS package, exporting through module.exports.
module.exports = { handler: (event, context, callback) => callback(null, { statusCode: 200, body: 'js-cjs' }) };
