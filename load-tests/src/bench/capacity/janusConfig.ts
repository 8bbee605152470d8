/**
 * The capacity benchmark's Janus configuration, in a private folder: only the Streaming plugin
 * and the WebSocket transport, on 127.0.0.1 (ICE candidates on `lo` only), no event handlers,
 * errors-only logging, no session timeout, one RTP mountpoint (Opus + VP8).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export const MOUNTPOINT = 1;
export const AUDIO_PT = 111;
export const VIDEO_PT = 96;

/** Where Janus listens: its WebSocket API, and the mountpoint's RTP ports (the feed sends there). */
export interface JanusPorts {
  wsPort: number;
  audioPort: number;
  videoPort: number;
}

/**
 * Writes janus.jcfg and the transport's and the plugin's configuration into <dir>/conf (the
 * caller makes the folders and links the modules); returns that folder.
 */
export function writeJanusConfig(dir: string, eventLoops: number, ports: JanusPorts): string {
  const conf = path.join(dir, 'conf');
  writeFileSync(
    path.join(conf, 'janus.jcfg'),
    `general: {
  configs_folder = "${conf}"
  plugins_folder = "${path.join(dir, 'plugins')}"
  transports_folder = "${path.join(dir, 'transports')}"
  events_folder = "${path.join(dir, 'events')}"
  loggers_folder = "${path.join(dir, 'loggers')}"
  debug_level = 2
  session_timeout = 0
${eventLoops > 0 ? `  event_loops = ${eventLoops}\n` : ''}}
media: {}
nat: {
  nice_debug = false
  ice_enforce_list = "lo"
}
plugins: {}
transports: {}
events: { broadcast = false }
loggers: {}
`,
  );
  writeFileSync(
    path.join(conf, 'janus.transport.websockets.jcfg'),
    `general: {
  json = "compact"
  ws = true
  ws_port = ${ports.wsPort}
  ws_ip = "127.0.0.1"
  wss = false
}
admin: { admin_ws = false }
`,
  );
  writeFileSync(
    path.join(conf, 'janus.plugin.streaming.jcfg'),
    `general: {}
capacity: {
  type = "rtp"
  id = ${MOUNTPOINT}
  description = "capacity benchmark"
  media = (
    { type = "audio" mid = "a" label = "audio" port = ${ports.audioPort} pt = ${AUDIO_PT} codec = "opus" },
    { type = "video" mid = "v" label = "video" port = ${ports.videoPort} pt = ${VIDEO_PT} codec = "vp8" }
  )
}
`,
  );
  return conf;
}
