import type { Placement, StreamInfo } from '@cascade/protocol';

/**
 * What a media node needs from the topology controller. The origin calls the controller in
 * process; a relay reaches it over its authenticated WebSocket. Media never waits on it once
 * flowing: only joins and moves do.
 */
export interface ControlPlane {
  /** Where a viewer of `streamId` should go (possibly this node). Throws coded errors. */
  placeViewer(request: { streamId: string; exclude?: string[]; token?: string }): Promise<{ placement: Placement; stream: StreamInfo }>;
  /** A viewer placed on this node left. */
  viewerLeft(streamId: string): void;
}
