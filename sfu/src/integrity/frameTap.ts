import type { types } from 'mediasoup';
import { FrameAssembler, frameCodecOf, parseRtp, type AssembledFrame, type FrameCodec } from '@cascade/protocol';

/**
 * Every frame `producer` carries, in canonical form, handed to `onFrame` in this process: a
 * pipe consumer (all simulcast layers, SSRCs as they come) on a DirectTransport of the
 * producer's router, its RTP reassembled into frames. The worker hands the packets over its
 * channel, which loses none; packets the producer itself never got make no frame here, nor at
 * any viewer. Each video frame comes with its simulcast layer (the index of its SSRC among the
 * consumer's encodings, lowest first, as mediasoup numbers spatial layers).
 */
export async function tapFrames(
  transport: types.DirectTransport,
  router: types.Router,
  producer: types.Producer,
  onFrame: (frame: AssembledFrame, layer: number | undefined) => void,
  now: () => number = Date.now,
): Promise<types.Consumer> {
  const consumer = await transport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities, pipe: true });
  const codecs = new Map<number, FrameCodec>();
  for (const c of consumer.rtpParameters.codecs) {
    const codec = frameCodecOf(c.mimeType);
    if (codec) codecs.set(c.payloadType, codec);
  }
  const layers = new Map<number, number>();
  consumer.rtpParameters.encodings?.forEach((e, i) => {
    if (e.ssrc !== undefined) layers.set(e.ssrc, i);
  });
  const assembler = new FrameAssembler({ codecs, now }, (f) => onFrame(f, layers.get(f.ssrc)));
  consumer.on('rtp', (packet: Buffer) => {
    const rtp = parseRtp(packet);
    if (rtp) assembler.push(rtp);
  });
  return consumer;
}
