// Turns an HTTP request into the Lambda event of one of the four formats (REFERENCE §2): one
// module per format (apigw_v1, apigw_v2, alb) over shared fields, headers and request ids; the
// Python shim's events/ has the same modules.
import { restV1 } from './apigw_v1.mjs';
import { httpV2 } from './apigw_v2.mjs';
import { alb } from './alb.mjs';

export { requestUuid } from './ids.mjs';
export { firstHeader } from './headers.mjs';

/** Returns a builder (req, body Buffer|null, now epoch ms, requestId) → event for the configured format. */
export function eventBuilder(cfg) {
  const settings = {
    ...cfg,
    stagePrefix: cfg.stage === '$default' ? '' : `/${cfg.stage}`,
    targetGroupArn: `arn:aws:elasticloadbalancing:${cfg.lambda.region}:${cfg.lambda.accountId}:targetgroup/${cfg.lambda.functionName}/0000000000000000`,
  };
  const format = cfg.httpFormat;
  return (req, body, now, requestId) => {
    const url = req.url;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    if (format === 'apigw-v1') return restV1(req, path, rawQuery, body, settings, requestId, now);
    if (format === 'apigw-v2') return httpV2(req, path, rawQuery, body, settings, requestId, now);
    return alb(req, path, rawQuery, body, settings, format === 'alb-multi');
  };
}
