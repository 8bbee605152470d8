export type * from './LoadTestTypes.js';
export type { LoadTestOptions, BroadcasterKind } from './options.js';
export type { LoadTestDeps } from './LoadTest.js';
export type { RtpPacketInfo, RtpReceiveStatsOptions, RtpInterval, RtpReceiveSummary } from './RtpReceiveStats.js';
export type { LogHistogramJSON } from './LogHistogram.js';
export type { Summary } from './stats.js';
export type { SyntheticBroadcasterOptions, SyntheticBroadcasterDeps } from './SyntheticBroadcaster.js';
