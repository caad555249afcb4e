// A plain API Gateway handler: the same file runs on AWS Lambda and in the image.
'use strict';

exports.handler = async (event, context) => {
  const name = (event.queryStringParameters && event.queryStringParameters.name) || 'world';
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: `hello, ${name}`,
      path: event.path,
      requestId: context.awsRequestId,
      functionName: context.functionName,
    }),
  };
};
