import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local Slack-compatible webhook that keeps every message it receives; the worker (in this process) finds its
 * URL in `process.env[urlEnv]`, as an environment's `{ type: webhook, urlEnv }` channel names it.
 */
export async function captureWebhook(urlEnv: string): Promise<{ received: Array<{ text: string }>; close(): void }> {
  const received: Array<{ text: string }> = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  process.env[urlEnv] = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  return { received, close: () => hook.close() };
}
