import { existsSync } from 'node:fs';
import type * as Mediasoup from 'mediasoup';
import { CascadeError } from '@cascade/protocol';

export type MediasoupModule = typeof Mediasoup;

let loaded: Promise<MediasoupModule> | undefined;

/**
 * Import mediasoup with our offline-built worker. mediasoup reads MEDIASOUP_WORKER_BIN once,
 * when its Worker module loads, so it must be set before the first import; every part of
 * Cascade gets mediasoup through here.
 */
export function loadMediasoup(workerBin: string): Promise<MediasoupModule> {
  if (!loaded) {
    if (!existsSync(workerBin)) {
      return Promise.reject(
        new CascadeError(
          'CASCADE_ERR_CONFIG_INVALID',
          `mediasoup worker binary not found at ${workerBin}; build it with scripts/build-mediasoup-worker.sh (npm start and npm test do this by themselves)`,
        ),
      );
    }
    process.env.MEDIASOUP_WORKER_BIN = workerBin;
    loaded = import('mediasoup');
  }
  return loaded;
}
