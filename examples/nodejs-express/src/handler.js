// The Lambda handler: serverless-http turns API Gateway / ALB events into Express requests.
import serverless from 'serverless-http';
import { app } from './app.js';

const express = serverless(app, { binary: ['application/octet-stream', 'image/*'] });

export async function handler(event, context) {
  // A handler that throws is what the platform answers with 502; Express itself never throws.
  if ((event.rawPath ?? event.path) === '/crash') {
    throw new Error('crashed on purpose');
  }
  return express(event, context);
}
