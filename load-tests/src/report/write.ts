import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LoadTestReport } from '../LoadTestTypes.js';
import { renderReportHtml } from './html.js';

/** ./load-test-reports/2025-01-31T12-00-00 (no colons: valid on every file system). */
export function defaultReportDir(cwd: string, at: Date): string {
  return path.join(cwd, 'load-test-reports', at.toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-'));
}

/** Write report.json and report.html into `dir` (created if needed). */
export function writeReport(report: LoadTestReport, dir: string): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const json = path.join(dir, 'report.json');
  const html = path.join(dir, 'report.html');
  writeFileSync(json, JSON.stringify(report, null, 1));
  writeFileSync(html, renderReportHtml(report));
  return { json, html };
}
