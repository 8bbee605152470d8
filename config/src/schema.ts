/**
 * The one configuration schema of Cascade, for every process (origin, controller, relay,
 * load tests). Defaults live here. Every key can be set in a YAML/JSON file or by an
 * environment variable named after its path: `origin.maxViewers` → `CASCADE_ORIGIN_MAX_VIEWERS`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { IceServer } from '@cascade/protocol';

const Ms = (d: number, min = 0, what = '') => Type.Integer({ minimum: min, default: d, description: what ? `${what} (ms)` : 'ms' });

export const ListenIp = Type.Object(
  {
    /** Local address mediasoup binds, e.g. 0.0.0.0, ::, 10.0.0.5. */
    ip: Type.String({ minLength: 1, description: 'Local address mediasoup binds, e.g. 0.0.0.0, ::, 10.0.0.5.' }),
    /** Address sent to clients. Empty: the ip itself, or a detected host address for 0.0.0.0 / ::. */
    announcedIp: Type.String({ default: '', description: 'Address sent to clients. Empty: the ip itself, or a detected host address for 0.0.0.0 / ::.' }),
  },
  { additionalProperties: false },
);

/** The wire's IceServer (what clients are handed), strict: a misspelt key in the config is an error. */
export const IceServerConfig = Type.Object(IceServer.properties, { additionalProperties: false });

export const ConfigSchema = Type.Object(
  {
    /** development: dev tokens are handed out by the demo. production: a secret is required. */
    mode: Type.Union([Type.Literal('development'), Type.Literal('production')], { default: 'development', description: 'development: dev tokens are handed out by the demo. production: a secret is required.' }),
    /** Roles of a `server` process. A relay process ignores this. */
    roles: Type.Array(Type.Union([Type.Literal('origin'), Type.Literal('controller')]), {
      default: ['origin', 'controller'],
      minItems: 1,
      description: 'What a server process runs: origin (media node for broadcasters) and/or controller (topology, relay API).',
    }),
    /** Stable id of this node in the topology. Empty: derived from the host name and port. */
    nodeId: Type.String({ default: '', pattern: '^[A-Za-z0-9_.:-]{0,128}$', description: 'Stable id of this node in the topology. Empty: derived from the host name and port.' }),
    http: Type.Object(
      {
        /** Empty: 127.0.0.1 for a server process (nothing but this machine can connect), 0.0.0.0 for a relay. */
        host: Type.String({
          default: '',
          description: 'Address the HTTP/WebSocket server binds. Empty: 127.0.0.1 for `npm start` (only this machine can connect; set 0.0.0.0 or :: to open it up, see the production checklist in the README), 0.0.0.0 for a relay.',
        }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'HTTP/WebSocket port (0: any free port).' }),
        /** URL clients use to reach this process (behind a proxy, or across hosts). Empty: http://<announced ip>:<port>. */
        publicUrl: Type.String({ default: '', description: 'URL clients use to reach this process (behind a proxy, or across hosts). Empty: http://<announced ip>:<port>.' }),
        trustProxy: Type.Array(Type.String(), {
          default: ['127.0.0.1', '::1'],
          description: "Addresses of reverse proxies (TLS terminators) whose X-Forwarded-For names the real client: what the controller takes as a relay's address and a viewer's.",
        }),
        headersTimeoutMs: Ms(10000, 1000, 'A client must send its complete request headers (or WebSocket handshake) within this time, or gets 408 and is disconnected.'),
        requestTimeoutMs: Ms(30000, 1000, 'A whole HTTP request, body included, must arrive within this time.'),
        keepAliveTimeoutMs: Ms(5000, 100, 'An idle keep-alive HTTP connection is closed after this time.'),
        /** Open TCP connections (HTTP and WebSocket together) one client address may hold. 0: no limit. */
        maxConnectionsPerAddress: Type.Integer({
          minimum: 0,
          default: 100,
          description: 'Open TCP connections (HTTP and WebSocket together) one client address may hold; beyond, new ones get 429 CASCADE_ERR_HTTP_TOO_MANY_CONNECTIONS. 0: no limit.',
        }),
        /** Addresses maxConnectionsPerAddress does not apply to. */
        unlimitedAddresses: Type.Array(Type.String({ minLength: 1 }), {
          default: ['127.0.0.1', '::1'],
          description: 'Client addresses http.maxConnectionsPerAddress does not apply to: loopback by default (a reverse proxy on this machine); add a reverse proxy on another host here, since every client then comes from its address.',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    signalling: Type.Object(
      {
        maxMessageBytes: Type.Integer({ minimum: 1024, maximum: 1048576, default: 65536, description: 'Largest signalling message accepted; bigger ones get CASCADE_ERR_PROTOCOL_TOO_LARGE.' }),
        /** Inbound messages per second per connection, on average. */
        rateLimitPerSec: Type.Integer({ minimum: 1, default: 50, description: 'Inbound messages per second per connection, on average.' }),
        /** WebSocket ping period; a missed pong ends the connection. */
        pingIntervalMs: Ms(5000, 100, 'WebSocket ping period for clients; two missed pongs in a row end the connection.'),
        requestTimeoutMs: Ms(10000, 100, 'How long a request to another node or the controller may take.'),
        maxConnections: Type.Integer({ minimum: 1, default: 20000, description: 'Open signalling connections per process; beyond, upgrades get 503.' }),
        firstMessageTimeoutMs: Ms(5000, 100, 'A /ws connection must send its first request within this time, or is closed with CASCADE_ERR_PROTOCOL_IDLE.'),
        idleTimeoutMs: Ms(30000, 1000, 'A /ws session that holds nothing (it neither publishes, watches nor pulls a stream) is closed with CASCADE_ERR_PROTOCOL_IDLE after this time; pings do not count.'),
        refusalLogsPerSec: Type.Integer({
          minimum: 0,
          default: 5,
          description: 'Refused signalling messages logged per second per process and error code (burst: 4 times as many), so that every kind of refusal shows in the log but a flood does not fill it; all are counted in cascade_signal_errors_total, and the next line of a code says how many were left out. 0: none logged.',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    mediasoup: Type.Object(
      {
        /** Path of the worker binary. Empty: ~/.cache/cascade/mediasoup-worker-3.12.16/mediasoup-worker. */
        workerBin: Type.String({ default: '', description: 'Path of the worker binary. Empty: ~/.cache/cascade/mediasoup-worker-3.12.16/mediasoup-worker.' }),
        /** Workers to run; 0 means one per CPU core. */
        numWorkers: Type.Integer({ minimum: 0, maximum: 256, default: 0, description: 'Workers to run; 0 means one per CPU core.' }),
        logLevel: Type.Union([Type.Literal('debug'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('none')], {
          default: 'warn',
          description: 'mediasoup worker log level.',
        }),
        rtcMinPort: Type.Integer({ minimum: 1, maximum: 65535, default: 40000, description: 'Lowest UDP/TCP port for media.' }),
        rtcMaxPort: Type.Integer({ minimum: 1, maximum: 65535, default: 49999, description: 'Highest UDP/TCP port for media.' }),
        mediaPort: Type.Integer({
          minimum: -1,
          maximum: 65535,
          default: 40000,
          description: 'UDP and TCP port every WebRTC transport of the first worker shares (worker i uses mediaPort + i): the one port viewers reach this node on. 0: a free port of the rtc range per worker. -1: no shared port (each transport takes its own ports from the range).',
        }),
        listenIps: Type.Array(ListenIp, { default: [{ ip: '0.0.0.0', announcedIp: '' }], minItems: 1, description: 'Media listen addresses and the address announced for each (IPv4 and IPv6). Empty announcedIp: detected.' }),
        /** bps a broadcaster may send per transport. */
        maxIncomingBitrate: Type.Integer({ minimum: 100000, default: 5000000, description: 'bps a broadcaster may send per transport.' }),
        initialAvailableOutgoingBitrate: Type.Integer({ minimum: 100000, default: 1000000, description: 'bps a viewer transport starts with before bandwidth estimation.' }),
        /** Consumers per router before viewers spill to the same stream's router on another worker. */
        consumersPerRouter: Type.Integer({ minimum: 1, default: 400, description: 'Consumers per router before viewers spill to the same stream\'s router on another worker.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** STUN/TURN servers handed to clients when they join. */
    iceServers: Type.Array(IceServerConfig, { default: [], description: 'STUN/TURN servers handed to clients when they join.' }),
    auth: Type.Object(
      {
        /** Deployment secret: each token kind and the session cookies get their own key derived from it. Required in production. */
        secret: Type.String({
          default: '',
          description: 'Deployment secret: every token kind (broadcast, watch, relay, operator) and the session cookies get their own key derived from it. Required in production, with at least 32 bytes of entropy (openssl rand -hex 32).',
        }),
        /** `iss` claim of the tokens this deployment issues and accepts. */
        issuer: Type.String({ default: 'cascade', minLength: 1, maxLength: 128, description: "Issuer (iss claim) of the tokens this deployment signs and accepts: deployments sharing a secret by mistake still refuse each other's tokens." }),
        /** Lifetime of relay tokens; relays renew theirs over their control connection before expiry. */
        relayTokenTtlSec: Type.Integer({
          minimum: 300,
          default: 86400,
          description: 'Lifetime of relay tokens (the Volunteer page, and `cascade token relay` without --ttl), seconds; a connected relay renews its token before expiry (node.renewToken).',
        }),
        /** Require a watch token to view streams. */
        watchTokenRequired: Type.Boolean({ default: false, description: 'Require a watch token to view streams.' }),
        /** Lifetime of the development broadcast tokens the demo obtains, seconds. */
        devTokenTtlSec: Type.Integer({ minimum: 60, default: 12 * 3600, description: 'Lifetime of the development broadcast tokens the demo obtains, seconds.' }),
        /** Lifetime of placement and pipe tickets, seconds. */
        ticketTtlSec: Type.Integer({ minimum: 5, default: 60, description: 'Lifetime of placement and pipe tickets, seconds.' }),
        /** PEM file with the EC P-256 key signing tickets. Empty: generated once and kept in the store. */
        ticketKeyFile: Type.String({ default: '', description: 'PEM file with the EC P-256 key signing tickets. Empty: generated once and kept in the store.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    origin: Type.Object(
      {
        /** Viewers the origin serves itself before the tree spills to relays. */
        maxViewers: Type.Integer({ minimum: 0, default: 200, description: 'Viewers the origin serves itself before the tree spills to relays.' }),
        /** Live streams this origin accepts. */
        maxStreams: Type.Integer({ minimum: 1, default: 50, description: 'Live streams this origin accepts.' }),
        /** Streams one broadcaster (token subject) may hold on this origin at once (waiting, live or reconnecting). */
        maxStreamsPerOwner: Type.Integer({
          minimum: 1,
          default: 3,
          description: 'Streams one broadcaster (token subject) may hold on this origin at once, waiting, live or reconnecting; beyond, stream.publish gets CASCADE_ERR_STREAM_OWNER_LIMIT.',
        }),
        /** Relay pipes the origin feeds, all streams together (each stream's tree still takes at most K). */
        maxChildRelays: Type.Integer({
          minimum: 0,
          default: 64,
          description: "Relay pipes the origin feeds, all streams together; each stream's tree takes at most topology.maxChildren of them.",
        }),
        controllerUrl: Type.String({
          default: '',
          description: 'For an origin without the controller role: the controller to register with (http(s)://…); the origin authenticates with a token it makes from auth.secret.',
        }),
        /** Minimum gap between key frame requests sent to a broadcaster of one video layer (no simulcast). */
        keyFrameRequestDelayMs: Ms(1000, 0, 'Minimum gap between key frame requests sent to a broadcaster whose video has one layer (no simulcast).'),
        /** The same per simulcast layer, lowest first; the last value holds for layers beyond. */
        layerKeyFrameRequestDelayMs: Type.Array(Type.Integer({ minimum: 0 }), {
          default: [350, 700, 1000],
          minItems: 1,
          maxItems: 4,
          description:
            "Minimum gap between key frame requests sent to a simulcast broadcaster, per layer, lowest first (ms; the last value holds for layers beyond). Joins and failovers start on the lowest layer, whose small key frames may be asked for often; the top layer's big ones are rationed. Keep them above 300: Chrome ignores a request that comes within 300 ms of its previous key frame, and mediasoup asks again only a second later. JSON in the environment: `[350,700,1000]`.",
        }),
        /** How long a stream waits for its broadcaster to come back before it ends. */
        reconnectGraceMs: Ms(30000, 0, 'How long a stream waits for its broadcaster to come back before it ends.'),
        /** How long an ended stream is remembered (so viewers read "ended", not "not found"). */
        endedRetentionMs: Ms(3600000, 0, 'How long an ended stream is remembered (so viewers read "ended", not "not found").'),
        /** At most this many ended streams are remembered; the oldest are forgotten first. */
        maxEndedStreams: Type.Integer({
          minimum: 0,
          default: 200,
          description: 'At most this many ended streams are remembered (all controllers together); beyond, the oldest are forgotten before origin.endedRetentionMs.',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    whip: Type.Object(
      {
        /** Accept WHIP broadcasters (OBS, GStreamer, browsers) on POST /whip of the origin. */
        enabled: Type.Boolean({ default: true, description: 'Accept WHIP broadcasters (OBS, GStreamer, browsers) on POST /whip of the origin.' }),
        /** A WHIP broadcaster whose transport receives nothing this long counts as disconnected. */
        idleTimeoutMs: Ms(10000, 1000, 'A WHIP broadcaster whose media stops this long counts as disconnected: its stream waits origin.reconnectGraceMs for a new POST'),
      },
      { additionalProperties: false, default: {} },
    ),
    whep: Type.Object(
      {
        /** Serve WHEP players on POST /whep/<streamId>, placed on the origin or a relay like any viewer. */
        enabled: Type.Boolean({ default: true, description: 'Serve WHEP players (POST /whep/<streamId>) through the origin, placed on the origin or a relay like any viewer.' }),
        idleTimeoutMs: Ms(30000, 1000, 'A WHEP player served by the origin that sends nothing (no ICE check, no RTCP) this long is gone'),
      },
      { additionalProperties: false, default: {} },
    ),
    rtpIngest: Type.Object(
      {
        /** Hand out plain RTP ports (POST /ingest/rtp, `cascade ingest`). Off: plain RTP is unencrypted and a port belongs to whoever sends to it first. */
        enabled: Type.Boolean({ default: false, description: 'Hand out plain RTP ports for ffmpeg and encoders without WebRTC (POST /ingest/rtp, `cascade ingest`). Off by default: plain RTP is unencrypted and a port belongs to whoever sends to it first; enable it on networks you trust.' }),
        /** Time the sender has to start sending once it has its ports. */
        startTimeoutMs: Ms(60000, 1000, 'Time an RTP sender has to start once it has its ports; then, as for WHIP, whip.idleTimeoutMs of silence counts as the broadcaster lost'),
      },
      { additionalProperties: false, default: {} },
    ),
    recording: Type.Object(
      {
        /** Let broadcasters record their streams on the origin (needs ffmpeg). */
        enabled: Type.Boolean({ default: false, description: 'Let broadcasters record their streams on the origin (POST /api/streams/<id>/recording, WHIP ?record=1); needs ffmpeg. Off: nothing is recorded.' }),
        dir: Type.String({ default: 'recordings', description: 'Folder of the recordings (relative to the working directory), one media file and one .json description each.' }),
        maxBytes: Type.Integer({ minimum: 1024, default: 2 * 1024 ** 3, description: 'A recording stops at this size, bytes.' }),
        maxDurationMs: Ms(4 * 3600_000, 1000, 'A recording stops after this long'),
        minFreeBytes: Type.Integer({ minimum: 0, default: 256 * 1024 ** 2, description: 'Recordings stop when their disk has less free space than this, bytes (the live stream goes on).' }),
        retentionMs: Ms(7 * 24 * 3600_000, 0, 'Recordings that ended longer ago than this are deleted; 0 keeps them'),
      },
      { additionalProperties: false, default: {} },
    ),
    topology: Type.Object(
      {
        /** K: child relays per node per stream, the origin included. */
        maxChildren: Type.Integer({ minimum: 1, maximum: 64, default: 3, description: 'K: child relays per node per stream, the origin included.' }),
        /** How often nodes report to the controller. Relays follow the controller's value, given at registration. */
        heartbeatIntervalMs: Ms(1000, 50, "How often nodes report to the controller. Relays follow the controller's value (and its nodeTtlMs), given at registration; their own is used only until then."),
        /** A node whose heartbeats stop for this long is considered dead. */
        nodeTtlMs: Ms(3000, 100, 'A node whose heartbeats stop for this long is considered dead.'),
        /** Time a relay has to echo the reachability probe. */
        probeTimeoutMs: Ms(3000, 100, 'Time a relay has to echo the reachability probe.'),
        /** A relay above this CPU fraction (of its cores) or loss rate gets no new viewers. */
        demoteCpu: Type.Number({ minimum: 0, default: 0.9, description: 'A relay above this CPU fraction (of its cores) or loss rate gets no new viewers.' }),
        /** What one viewer or child relay costs a relay's uplink. */
        viewerKbps: Type.Number({
          minimum: 0,
          default: 1700,
          description: "What one viewer or child relay costs a node's uplink, kbit/s: a relay takes no more of them than its declared upload (--up-kbps) carries, and is demoted when it sends over 90 % of it. 0: ignore declared uploads.",
        }),
        demoteLossRate: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'Upstream loss rate above which a relay is demoted; also the loss its viewers may report before it gets no new viewers.' }),
        relayAddresses: Type.Union([Type.Literal('auto'), Type.Literal('public'), Type.Literal('any')], {
          default: 'auto',
          description: "Which media addresses a relay may announce. public: a public unicast address, the one its control connection comes from. any: any unicast address (a LAN, tests). auto: public in production mode, any in development.",
        }),
        uploadTestMaxKbps: Type.Integer({
          minimum: 0,
          default: 30000,
          description: 'Upload test at admission: a relay sends for one second at its declared upload, at most this (kbit/s); the controller holds it to what arrives. 0: no test.',
        }),
        registerTimeoutMs: Ms(10000, 100, 'A /control connection that has not registered by then is closed.'),
      },
      { additionalProperties: false, default: {} },
    ),
    redis: Type.Object(
      {
        /** redis://host:port/db. Empty: in-process store (single machine). */
        url: Type.String({ default: '', description: 'redis://host:port/db. Empty: in-process store (single machine).' }),
      },
      { additionalProperties: false, default: {} },
    ),
    relay: Type.Object(
      {
        /** Controller base URL (http(s)://host:port) a relay registers with. */
        controllerUrl: Type.String({ default: '', description: 'Controller base URL (http(s)://host:port) a relay registers with.' }),
        /** Relay token from `cascade token relay`. */
        token: Type.String({ default: '', description: 'Relay token from `cascade token relay`.' }),
        maxViewers: Type.Integer({ minimum: 0, default: 100, description: 'Viewers a relay may serve (--max-viewers).' }),
        maxChildren: Type.Integer({ minimum: 0, default: 3, description: 'Child relays a relay may feed (--max-children).' }),
        upKbps: Type.Number({ minimum: 1, maximum: 10_000_000, default: 50000, description: 'Declared upload bandwidth, kbit/s (--up-kbps); the controller measures it too and holds the relay to the lower figure.' }),
        downKbps: Type.Number({ minimum: 0, default: 50000, description: 'Declared download bandwidth, kbit/s (--down-kbps).' }),
        /** How long a relay keeps pulling a stream after its last viewer and child left. */
        lingerMs: Ms(15000, 0, 'How long a relay keeps pulling a stream after its last viewer and child left.'),
        /** Parent's pipe silent this long → parent considered lost. */
        stallTimeoutMs: Ms(2000, 200, 'Parent\'s pipe silent this long → parent considered lost.'),
        /** Time SIGTERM gives viewers and children to move away before exit. */
        drainTimeoutMs: Ms(10000, 0, 'Time SIGTERM gives viewers and children to move away before exit.'),
        portMapping: Type.Boolean({ default: true, description: 'Ask the home router to forward the media ports (UPnP-IGD, NAT-PMP) when behind NAT (--no-port-mapping turns it off).' }),
        pipePorts: Type.Integer({ minimum: 1, maximum: 1000, default: 16, description: 'UDP ports after the media port for pipes to parent and child relays (with --media-port).' }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'pino log level.' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    accounts: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Sign-up and sign-in on the web demo, the Volunteer page and the /api/me routes.' }),
        sessionTtlSec: Type.Integer({ minimum: 60, default: 7 * 86400, description: 'Lifetime of a sign-in session (its httpOnly cookie), seconds.' }),
        signInPerMinute: Type.Integer({ minimum: 1, default: 10, description: 'Sign-in attempts per minute per client address, and separately per account name; beyond, CASCADE_ERR_ACCOUNT_RATE_LIMITED.' }),
        signUpPerHour: Type.Integer({ minimum: 1, default: 10, description: 'Accounts created per hour per client address; beyond, CASCADE_ERR_ACCOUNT_RATE_LIMITED.' }),
        signUpPerMinuteTotal: Type.Integer({ minimum: 1, default: 60, description: 'Accounts created per minute on the whole deployment (a flood from many addresses); beyond, CASCADE_ERR_ACCOUNT_RATE_LIMITED.' }),
        passwordHashConcurrency: Type.Integer({ minimum: 1, default: 2, description: 'Password hashes (argon2id) computed at once; up to 8 times as many wait, more get CASCADE_ERR_ACCOUNT_BUSY.' }),
        broadcastTokenTtlSec: Type.Integer({ minimum: 60, default: 12 * 3600, description: 'Lifetime of the broadcast tokens a signed-in user gets to go live under their name, seconds.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    credits: Type.Object(
      {
        pointsPerGB: Type.Number({ minimum: 0, default: 1, description: "Points a volunteer relay's account earns per GB (1e9 bytes) its receivers confirm (and it counted itself)." }),
        watchCost: Type.Number({ minimum: 0, default: 0, description: 'Points charged once per account per stream watched (0: watching is free and may be anonymous).' }),
        signupGrant: Type.Number({ minimum: 0, default: 0, description: 'Points a new account starts with.' }),
        maxStreamKbps: Type.Integer({
          minimum: 100,
          default: 8000,
          description: 'Most a viewer can receive of one stream, kbit/s (the broadcaster is held to mediasoup.maxIncomingBitrate; this adds audio and packet overhead): credit per receipt, and per viewer per stream over time, is capped at this rate.',
        }),
        receiptIntervalMs: Ms(5000, 500, 'Period of viewers\' receipts; the time caps allow two periods of slack.'),
        settleIntervalMs: Ms(30000, 100, 'How often confirmed bytes are turned into points (one history entry per relay and settlement).'),
      },
      { additionalProperties: false, default: {} },
    ),
    integrity: Type.Object(
      {
        /** Sign digests of every frame on the origin, so that viewers can check what relays send them. */
        enabled: Type.Boolean({ default: true, description: "Sign digests of every frame on the origin (whatever the ingest) and send them with the media, so that viewers' SDKs check every frame a relay sends them and leave a relay that alters or withholds media. Off: nothing is signed, and viewers cannot tell an altered stream." }),
        batchIntervalMs: Ms(100, 20, 'Period of the signed digest batches: viewers hold a frame until its digest comes, about half of this on average'),
        probeMs: Ms(2000, 500, "How long the origin watches a stream through a relay a viewer reported before it decides (the relay is condemned only on the origin's own finding)"),
      },
      { additionalProperties: false, default: {} },
    ),
    webDemo: Type.Object(
      {
        /** Serve the web demo pages from this process. */
        enabled: Type.Boolean({ default: true, description: 'Serve the web demo pages from this process.' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type CascadeConfig = Static<typeof ConfigSchema>;
