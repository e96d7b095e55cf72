import { EarshotError } from '../errors.js';

/** A store operation failed; `retriable` says whether trying again later may succeed (server down) or not (bad schema). */
export class StoreError extends EarshotError {
  constructor(message: string, options: { retriable: boolean; cause?: unknown; fields?: Record<string, unknown> }) {
    super('EARSHOT_STORE_FAILED', message, options);
  }
}
