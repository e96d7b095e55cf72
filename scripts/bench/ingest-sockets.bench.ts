import { fileURLToPath } from 'node:url';
import { startIngest } from '../../apps/ingest/main.js';
import { createTestApp, testRuntime } from '../../test/support/runtime.js';
import type { BenchResult } from './run.js';
import { Child } from './support/child.js';
import { sleep } from './support/stats.js';

/**
 * Ingest over real sockets, unpaced: `ws` clients in a child process (so they do not share the
 * server's event loop) push two-track calls as fast as they can into an ingest server on an
 * embedded runtime (in-memory event log, Avro encoding, no Kafka). Measures how many frames one
 * server CPU-second accepts; the paced, Kafka-backed measurement is the `ingest` benchmark.
 *
 *   npm run bench -- ingest-sockets [--calls 100] [--frames 1000]
 */
const CLIENT = fileURLToPath(new URL('./support/burst-client.ts', import.meta.url));

export async function run(args: string[]): Promise<BenchResult> {
  const option = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const calls = option('calls', 100);
  const frames = option('frames', 1000);
  const runtime = await testRuntime({ env: { EARSHOT_LOG_LEVEL: 'error', EARSHOT_INGEST_PORT: '0' } });
  try {
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
    const client = new Child<{ type: 'sent' }>('burst client', CLIENT, [
      `${server.url}/twilio-media/${token}`,
      String(calls),
      String(frames),
    ]);
    try {
      const deadline = Date.now() + 120_000;
      while ((await metric('earshot_ingest_frames_received_total')) < total) {
        if (Date.now() > deadline) throw new Error('the server never received every frame');
        await sleep(20);
      }
    } finally {
      await client.close();
    }
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const serverCpu = (used.user + used.system) / 1e6;
    const dropped = await metric('earshot_ingest_frames_dropped_total');
    await server.stop();
    return {
      title: `Ingest over WebSockets, unpaced: ${calls} calls × 2 tracks × ${frames} frames from a ws client process, embedded event log`,
      columns: ['frames', 'wall s', 'frames/s', 'server CPU s', 'frames per server CPU-second', 'server µs/frame', 'dropped'],
      rows: [
        [
          total,
          Number(seconds.toFixed(2)),
          Math.round(total / seconds),
          Number(serverCpu.toFixed(2)),
          Math.round(total / serverCpu),
          Number(((serverCpu / total) * 1e6).toFixed(2)),
          dropped,
        ],
      ],
      notes: [
        'Wall time includes the client start (tsx) and connects; the client process is usually the bottleneck, so frames/s is a floor and CPU per frame the figure to compare.',
        'Server CPU is this whole process (the ingest server and the embedded runtime: Avro encoding, in-memory log), with the client in another process.',
      ],
    };
  } finally {
    await runtime.cleanup();
  }
}
