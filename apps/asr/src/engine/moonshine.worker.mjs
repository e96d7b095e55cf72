// Worker-thread entry of the Moonshine pool. Plain JavaScript on purpose: a worker does not
// inherit the tsx loader that `bin/earshot.js` registers on the main thread, so it registers
// it itself (a second registration, as under `node --import tsx`, is harmless), then loads the
// TypeScript worker body.
import { register } from 'tsx/esm/api';

register();
await import('./moonshine-worker-body.ts');
