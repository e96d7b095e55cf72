import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface Received {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
  readonly at: number;
  /** The subject CN of the client certificate, when one was presented. */
  readonly clientCn: string | null;
}

/** Decides the answer to a request: a status, or 'hang' (never answer). */
export type Behaviour = (request: Received) => number | 'hang' | Promise<number | 'hang'>;

export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  behaviour: Behaviour;
  close(): Promise<void>;
}

/**
 * A real webhook target: HTTPS with the given TLS options (or plain HTTP without), recording
 * every request. Hanging requests are ended when the receiver closes.
 */
export async function startReceiver(tls: ServerOptions | null, behaviour: Behaviour = () => 200, path = '/hook'): Promise<Receiver> {
  const hanging = new Set<ServerResponse>();
  const receiver: Receiver = {
    url: '',
    received: [],
    behaviour,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      const peer = (req.socket as TLSSocket).getPeerCertificate?.();
      const got: Received = {
        url: req.url ?? '',
        headers: req.headers,
        body,
        at: Date.now(),
        clientCn: peer && typeof peer.subject?.CN === 'string' ? peer.subject.CN : null,
      };
      receiver.received.push(got);
      const answer = await receiver.behaviour(got);
      if (answer === 'hang') {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer >= 400 ? `refused with ${answer}` : 'ok');
    });
  };
  const server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  (receiver as { url: string }).url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`;
  return receiver;
}
