import { spawn } from 'node:child_process';
import type { RtpTrackTarget } from './RtpIngestSession.js';

export interface IngestCommandOptions {
  /** The origin's base URL. */
  url: string;
  token: string;
  video: 'vp8' | 'h264' | 'none';
  audio: boolean;
  title?: string;
  /** A file (anything ffmpeg reads) to send; without it the command is only printed. */
  input?: string;
  loop: boolean;
  /** Ask the origin to record the stream (where the operator allows it). */
  record: boolean;
}

interface IngestAnswer {
  streamId: string;
  session: string;
  tracks: RtpTrackTarget[];
  ffmpeg: string;
  ffmpegOutputArgs: string[];
  sdp: string;
  recording?: string;
}

const say = (line: string) => process.stderr.write(`[cascade ingest] ${line}\n`);

/**
 * `cascade ingest`: ask the origin for RTP ports (POST /ingest/rtp) and print the ffmpeg
 * command and SDP on stdout; with `input`, run ffmpeg on it, and when ffmpeg stops (end of
 * file, Ctrl-C) end the stream with DELETE. Resolves with the exit status.
 */
export async function runIngest(o: IngestCommandOptions): Promise<number> {
  const base = o.url.replace(/\/+$/, '');
  let answer: IngestAnswer;
  try {
    const res = await fetch(`${base}/ingest/rtp`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${o.token}` },
      body: JSON.stringify({ video: o.video, audio: o.audio, record: o.record, ...(o.title ? { title: o.title } : {}) }),
    });
    const body = (await res.json().catch(() => ({}))) as Partial<IngestAnswer> & { code?: string; message?: string };
    if (res.status !== 201) {
      say(`refused: ${body.code ?? `HTTP ${res.status}`}: ${body.message ?? ''}`);
      return 1;
    }
    answer = body as IngestAnswer;
  } catch (err) {
    say(`cannot reach ${base}: ${(err as Error).message}`);
    return 1;
  }
  say(`stream ${answer.streamId} is ready; viewers watch it at ${base}/watch/${answer.streamId}`);
  if (answer.recording) say(`recording: ${answer.recording}`);
  for (const t of answer.tracks) say(`${t.kind}: ${t.codec} to ${t.ip}:${t.rtpPort} (RTCP ${t.rtcpPort}), payload type ${t.payloadType}, SSRC ${t.ssrc}`);
  const remove = async () => {
    const res = await fetch(`${base}${answer.session}`, { method: 'DELETE', headers: { Authorization: `Bearer ${o.token}` } }).catch(() => undefined);
    say(res?.ok ? `stream ${answer.streamId} ended` : `could not end stream ${answer.streamId} (${res?.status ?? 'no answer'}); it ends by itself when no media comes`);
  };
  if (!o.input) {
    process.stdout.write(`${answer.ffmpeg}\n\n# the same as SDP, for other senders:\n${answer.sdp}\n`);
    say(`start sending soon (the origin waits about a minute); end the stream with: curl -X DELETE -H 'Authorization: Bearer <token>' ${base}${answer.session}`);
    return 0;
  }
  // -sdp_file: ffmpeg would print its own SDP of the RTP outputs; ours is the one that matters.
  const args = ['-hide_banner', '-loglevel', 'warning', '-nostdin', '-sdp_file', '/dev/null', '-re', ...(o.loop ? ['-stream_loop', '-1'] : []), '-i', o.input, ...answer.ffmpegOutputArgs];
  say(`sending ${o.input} with ffmpeg; Ctrl-C ends the stream`);
  const ff = spawn('ffmpeg', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    ff.kill('SIGINT');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const code = await new Promise<number>((resolve) => {
    ff.once('error', (err) => {
      say(`cannot run ffmpeg: ${err.message}`);
      resolve(127);
    });
    ff.once('exit', (c) => resolve(stopping ? 0 : (c ?? 1)));
  });
  await remove();
  return code;
}
