import { readFileSync } from 'node:fs';
import { newCallSid, simulateCall } from '../../../apps/cli/src/simulate/twilio-call.js';

/**
 * Child process of capacity.bench.ts: keeps `slots` two-party calls going at real time for
 * `durationMs` against a running gateway (each slot plays the corpus call again and again, a new
 * Call SID each time; slot i starts at i/slots of the call's length, so ends of speech are spread
 * evenly instead of arriving in lockstep). A process of its own so the gateway's CPU is measured
 * without the clients'.
 *
 * IPC out: { type: 'eos', callSid, role, turn, at } when the frame holding a scripted
 * utterance's true end of speech was sent; { type: 'call', callSid, error? } when a call ended;
 * { type: 'done', calls, cpuMs, lagP99 } at the end.
 */
export interface PlayCommand {
  readonly type: 'play';
  readonly apiUrl: string;
  readonly apiId: string;
  readonly apiSecret: string;
  readonly slots: number;
  readonly durationMs: number;
  readonly staggerMs: number;
  readonly customer: { readonly mulaw: string; readonly ends: readonly number[] };
  readonly agent: { readonly mulaw: string; readonly ends: readonly number[] };
}

export type PlayerMessage =
  | { readonly type: 'eos'; readonly callSid: string; readonly role: 'customer' | 'agent'; readonly turn: number; readonly at: number }
  | { readonly type: 'call'; readonly callSid: string; readonly error?: string }
  | { readonly type: 'done'; readonly calls: number; readonly cpuMs: number; readonly lagP99: number };

const send = (message: PlayerMessage) => process.send?.(message);

async function play(command: PlayCommand): Promise<void> {
  const inbound = new Uint8Array(readFileSync(command.customer.mulaw));
  const outbound = new Uint8Array(readFileSync(command.agent.mulaw));
  // The frame (1-based chunk) holding each true end of speech, per track.
  const eosFrames = (ends: readonly number[]) => new Map(ends.map((endMs, turn) => [Math.floor((endMs * 8 - 1) / 160) + 1, turn]));
  const frames = { inbound: eosFrames(command.customer.ends), outbound: eosFrames(command.agent.ends) };
  const cpu0 = process.cpuUsage();
  const began = Date.now();
  const lags: number[] = [];
  let calls = 0;
  await Promise.all(
    Array.from({ length: command.slots }, async (_, slot) => {
      await new Promise((r) => setTimeout(r, (slot * command.staggerMs) / command.slots));
      while (Date.now() - began < command.durationMs) {
        const callSid = newCallSid();
        let t0 = 0;
        calls++;
        try {
          await simulateCall({
            apiUrl: command.apiUrl,
            apiId: command.apiId,
            apiSecret: command.apiSecret,
            callSid,
            inbound,
            outbound,
            speed: 1,
            onFrame: (track, chunk, mediaMs) => {
              const now = Date.now();
              if (chunk === 1 && track === 'inbound') t0 = now;
              else if (track === 'inbound') lags.push(now - (t0 + mediaMs));
              const turn = frames[track].get(chunk);
              if (turn !== undefined) send({ type: 'eos', callSid, role: track === 'inbound' ? 'customer' : 'agent', turn, at: now });
            },
          });
          send({ type: 'call', callSid });
        } catch (error) {
          send({ type: 'call', callSid, error: (error as Error).message });
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  lags.sort((a, b) => a - b);
  send({
    type: 'done',
    calls,
    cpuMs: (cpu.user + cpu.system) / 1000,
    lagP99: lags.length ? (lags[Math.min(lags.length - 1, Math.floor(lags.length * 0.99))] as number) : 0,
  });
}

process.on('message', (command: PlayCommand) => {
  if (command.type === 'play')
    play(command).then(
      () => process.disconnect?.(),
      (error) => {
        console.error(`call-player: ${(error as Error).message}`);
        process.exit(1);
      },
    );
});
