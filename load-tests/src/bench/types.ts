/**
 * What every benchmark returns: its figure next to a baseline measured in the same run,
 * and the ratio between them. BENCHMARKS.md is written from these.
 */
export interface BenchFigure {
  /** e.g. "viewers per origin core (mediasoup SRTP PlainTransport sinks)". */
  name: string;
  value: number;
  unit: string;
  /** What the figure is compared with, measured in the same run. */
  baseline: { name: string; value: number; unit: string };
  /** value / baseline.value (or baseline/value where lower is better; say so in `note`). */
  ratio: number;
  /** How to read it: which is better, what was used (sinks, clients), caveats. */
  note: string;
}

export interface BenchResult {
  /** Short id: capacity, hops, join, placement, failover. */
  id: string;
  title: string;
  figures: BenchFigure[];
  /** Raw numbers worth keeping (percentiles, per-step samples). */
  details: Record<string, unknown>;
  /** Anything that makes the figure weaker than it looks. */
  warnings: string[];
  /** More for BENCHMARKS.md (a table of every ramp, …), printed after the notes. */
  markdown?: string;
  durationMs: number;
}

export interface BenchContext {
  /** Repository root. */
  root: string;
  /** Scale knob: 'quick' for a smoke run, 'full' for BENCHMARKS.md. */
  scale: 'quick' | 'full';
  log(line: string): void;
}
