/**
 * Cascade's operator load-test tool. The CLI (dist/cli.js) is the usual entry; these exports
 * let other tools (benchmarks, CI jobs) drive a run or reuse the measuring pieces.
 */
export { LoadTest } from './LoadTest.js';
export { parseCliArgs, parseRate, USAGE, UsageError, LIMITS } from './options.js';
export { SyntheticBroadcaster } from './SyntheticBroadcaster.js';
export { ensureClip, defaultCacheDir } from './clip.js';
export { FrameStamper } from './FrameStamper.js';
export { RtpReceiveStats } from './RtpReceiveStats.js';
export { LogHistogram } from './LogHistogram.js';
export { percentile, summarize, histogram, cdf } from './stats.js';
export { renderReportHtml } from './report/html.js';
export { writeReport, defaultReportDir } from './report/write.js';
export { formatSummary } from './summaryText.js';
export { wallClockMs } from './clock.js';
export * as types from './types.js';
