import uWS from 'uWebSockets.js';
import { EarshotError } from '../../shared/src/errors.js';

export type Uws = typeof uWS;

/**
 * uWebSockets.js (the @trufflesuite build) silently falls back to a slow JavaScript
 * implementation when its native binary does not load (another Node ABI, UWS_USE_FALLBACK).
 * Ingest refuses to start on the fallback rather than degrade under load without saying so.
 */
export function nativeUws(): Uws {
  if (!uWS.App.toString().includes('[native code]')) {
    throw new EarshotError(
      'EARSHOT_INFRA_PREREQUISITE_MISSING',
      `uWebSockets.js loaded its JavaScript fallback, not the native binary (${process.platform}-${process.arch}, ` +
        `Node ABI ${process.versions.modules}); ingest needs the native one (binaries cover Node 16/18/20 on this build)`,
    );
  }
  return uWS;
}
