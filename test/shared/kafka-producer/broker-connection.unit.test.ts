import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { BrokerConnection, BrokerConnectionError } from '../../../apps/shared/src/adapters/kafka-producer/broker-connection.js';

// A TCP peer that misbehaves on purpose: the real broker never sends these frames, so only a
// scripted server can check that a bad one fails the connection with a clear error and hangs nothing.
async function peer(
  t: Test,
  onRequest: (socket: Socket, correlationId: number, frame: Buffer) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        const size = buffered.readInt32BE(0);
        const frame = buffered.subarray(0, 4 + size);
        buffered = buffered.subarray(4 + size);
        onRequest(socket, frame.readInt32BE(8), frame);
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { server, port: (server.address() as AddressInfo).port };
}

function request(correlationId: number, payload = 'x'): Buffer {
  const body = Buffer.from(payload);
  const frame = Buffer.alloc(12 + body.length);
  frame.writeInt32BE(8 + body.length, 0);
  frame.writeInt16BE(0, 4);
  frame.writeInt16BE(3, 6);
  frame.writeInt32BE(correlationId, 8);
  body.copy(frame, 12);
  return frame;
}

function answer(correlationId: number, body: string): Buffer {
  const bytes = Buffer.from(body);
  const frame = Buffer.alloc(8 + bytes.length);
  frame.writeInt32BE(4 + bytes.length, 0);
  frame.writeInt32BE(correlationId, 4);
  bytes.copy(frame, 8);
  return frame;
}

const options = { connectTimeoutMs: 2000, requestTimeoutMs: 2000 };

t.test('pipelined requests: answers split into single bytes or packed into one chunk reach the right caller', async (t) => {
  const { port } = await peer(t, (socket, id) => {
    const frame = answer(id, `answer-${id}`);
    if (id === 1) for (const byte of frame) socket.write(Buffer.from([byte]));
    else socket.write(frame);
  });
  const connection = new BrokerConnection('127.0.0.1', port, options);
  t.teardown(() => connection.close());
  const bodies = await Promise.all([1, 2, 3].map((id) => connection.request(request(id), id)));
  t.same(
    bodies.map((b) => b.toString()),
    ['answer-1', 'answer-2', 'answer-3'],
  );
  t.ok(connection.usable);
});

t.test('an answer to a request never made fails the connection and every request waiting on it', async (t) => {
  const { port } = await peer(t, (socket) => socket.write(answer(999, 'stray')));
  const connection = new BrokerConnection('127.0.0.1', port, options);
  const error = await connection.request(request(1), 1).catch((e: unknown) => e);
  t.type(error, BrokerConnectionError);
  t.match((error as Error).message, /unknown correlation id 999/);
  t.notOk(connection.usable, 'retired: the owner opens a new one');
  t.rejects(connection.request(request(2), 2), /unknown correlation id/, 'later requests fail at once');
});

t.test('a frame with an impossible size fails the connection', async (t) => {
  const { port } = await peer(t, (socket) => socket.write(Buffer.from([0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1])));
  const connection = new BrokerConnection('127.0.0.1', port, options);
  await t.rejects(connection.request(request(1), 1), /sent a frame of -2 bytes/);
});

t.test('no answer within the request timeout: the request fails, the connection is retired', async (t) => {
  const { port } = await peer(t, () => {});
  const connection = new BrokerConnection('127.0.0.1', port, { connectTimeoutMs: 2000, requestTimeoutMs: 150 });
  await t.rejects(connection.request(request(1), 1), /no answer from 127\.0\.0\.1:\d+ within 150 ms/);
  t.notOk(connection.usable);
});

t.test('the peer closing mid-request fails the request with the broker named', async (t) => {
  const { port } = await peer(t, (socket) => socket.destroy());
  const connection = new BrokerConnection('127.0.0.1', port, options);
  await t.rejects(connection.request(request(1), 1), new RegExp(`127\\.0\\.0\\.1:${port}`));
});

t.test('nothing listening: connect refused is a connection error', async (t) => {
  const { server, port } = await peer(t, () => {});
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const connection = new BrokerConnection('127.0.0.1', port, options);
  const error = await connection.request(request(1), 1).catch((e: unknown) => e);
  t.type(error, BrokerConnectionError);
  t.match((error as Error).message, /ECONNREFUSED/);
});
