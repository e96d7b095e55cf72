/**
 * End-to-end benchmark: real WebSocket clients (a child process, so they do not share the
 * server's event loop) stream two-track calls as fast as they can into an ingest server on an
 * embedded runtime. Reports media frames per second accepted by the server.
 *
 *   npx tsx test/ingest/bench/socket-frames.bench.ts [calls=100] [framesPerTrack=1000]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startIngest } from '../../../apps/ingest/main.js';
import { createTestApp, testRuntime } from '../../support/runtime.js';
import { frameBytes, timestampOf } from '../support.js';

const [, , role, url, callsArg, framesArg] = process.argv;

if (role === 'client') {
  const calls = Number(callsArg);
  const frames = Number(framesArg);
  const payloads = { inbound: frameBytes('inbound', 1).toString('base64'), outbound: frameBytes('outbound', 1).toString('base64') };
  await Promise.all(
    Array.from({ length: calls }, async (_, i) => {
      const ws = new WebSocket(url as string);
      await new Promise((resolve) => ws.once('open', resolve));
      const streamSid = `MZbench${i}`;
      ws.send(
        JSON.stringify({
          event: 'start',
          start: {
            streamSid,
            accountSid: 'AC1',
            callSid: `CAbench${i}`,
            tracks: ['inbound', 'outbound'],
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          },
        }),
      );
      for (let chunk = 1; chunk <= frames; chunk++) {
        for (const track of ['inbound', 'outbound'] as const) {
          ws.send(
            `{"event":"media","sequenceNumber":"${chunk * 2}","media":{"track":"${track}","chunk":"${chunk}","timestamp":"${timestampOf(track, chunk)}","payload":"${payloads[track]}"},"streamSid":"${streamSid}"}`,
          );
        }
        if (chunk % 100 === 0) await new Promise((r) => setImmediate(r));
      }
      ws.send(JSON.stringify({ event: 'stop', streamSid }));
    }),
  );
  process.send?.('sent');
} else {
  const calls = Number(process.argv[2] ?? 100);
  const frames = Number(process.argv[3] ?? 1000);
  const runtime = await testRuntime({ env: { EARSHOT_LOG_LEVEL: 'error', EARSHOT_INGEST_PORT: '0' } });
  const app = await createTestApp(runtime, 'bench');
  const { token } = await runtime.tokens.issue(app.apiId);
  const server = await startIngest(runtime);
  const metric = async (name: string) => {
    const values = (await runtime.metrics.getSingleMetric(name)?.get())?.values ?? [];
    return values.reduce((sum, v) => sum + v.value, 0);
  };
  const total = calls * frames * 2;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const client = fork(fileURLToPath(import.meta.url), ['client', `${server.url}/twilio-media/${token}`, String(calls), String(frames)], {
    execArgv: ['--import', 'tsx'],
  });
  while ((await metric('earshot_ingest_frames_received_total')) < total) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const serverCpu = (used.user + used.system) / 1e6;
  console.log(
    `${calls} calls × 2 tracks × ${frames} frames over WebSockets: ${total.toLocaleString('en')} frames in ${seconds.toFixed(2)} s = ` +
      `${Math.round(total / seconds).toLocaleString('en')} frames/s accepted (server and client on separate cores; includes connect time); ` +
      `server process CPU ${serverCpu.toFixed(2)} s → ${Math.round(total / serverCpu).toLocaleString('en')} frames per server CPU-second; ` +
      `dropped ${await metric('earshot_ingest_frames_dropped_total')}`,
  );
  client.kill();
  await server.stop();
  await runtime.cleanup();
}
