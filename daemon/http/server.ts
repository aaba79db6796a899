/**
 * Node's HTTP server around the Hono app, as `serve` and `fleet` both run it: short timeouts for half-sent requests,
 * the security headers on every response, a JSON 400 for requests Hono cannot build or Node cannot parse.
 */
import { getRequestListener } from '@hono/node-server';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { answerClientError, requestErrorResponse } from './malformed.ts';
import { withSecurityHeaders } from './security-headers.ts';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** `wrap` adds to every response beneath Hono (the fleet marks its answers as the fleet's). */
export function createHttpServer(fetch: (request: Request) => Response | Promise<Response>, wrap: (listener: Listener) => Listener = (l) => l): Server {
  const http = createServer(
    // A client that sends half a request is closed after 10 s (Node's default is a minute), checked every second.
    { headersTimeout: 10_000, requestTimeout: 15_000, connectionsCheckingInterval: 1_000 },
    withSecurityHeaders(wrap(getRequestListener(fetch, { errorHandler: requestErrorResponse }))),
  );
  http.on('clientError', answerClientError);
  return http;
}

export function listenHttp(server: Server, target: { port: number; host: string } | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
