/**
 * What every page of the demo shares: the page state mirrored on `window.cascadeDemo` (for
 * end-to-end tests and the curious), element lookup, the deployment's addresses, HTML
 * escaping and the coded error box.
 */
import { AuthError, type CascadeError, type QualityInfo } from '@cascade/client-sdk';

export interface DemoState {
  page: string;
  state: string;
  /** Watch page: the quality asked for and the layer received (CascadeEvent.Quality). */
  quality?: QualityInfo;
  streamId?: string;
  nodeId?: string;
  /** Watch page: every node taken, why and when (CascadeEvent.NodeChanged). */
  nodes?: { nodeId: string; why: string; at: number }[];
  viewers?: number;
  reconnects: number;
  recording?: boolean;
  error?: { code: string; message: string };
  /** Where the broadcast token came from (url, account, development). */
  tokenSource?: string;
  /** Watch page: whether the frames shown verify (see CascadeEvent.Integrity), and every change with its time. */
  integrity?: { state: string; code?: string; nodeId: string };
  integrityLog?: { state: string; code?: string; nodeId: string; at: number }[];
}
export const demo: DemoState = { page: document.body.dataset.page ?? '', state: 'init', reconnects: 0 };
(window as unknown as { cascadeDemo: DemoState }).cascadeDemo = demo;

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
export const origin = window.location.origin;
/**
 * Where other people reach this deployment (`http.publicUrl`, put in the page by the server):
 * share links use it. Without one, the page's own address, which may be localhost.
 */
export const publicUrl = document.querySelector<HTMLMetaElement>('meta[name="cascade-public-url"]')?.content.replace(/\/+$/, '') || origin;

/** Anything as HTML-safe text (a browser's own error may carry a number where ours have strings). */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function showError(err: unknown): void {
  const e = err as CascadeError;
  const code = e.code ?? 'CASCADE_ERR_INTERNAL';
  demo.error = { code, message: e.message ?? String(err) };
  const box = $('error');
  box.innerHTML = `<strong>${escapeHtml(friendly(code))}</strong><br><span class="muted">${escapeHtml(e.message ?? '')}</span><br><code>${escapeHtml(code)}</code>`;
  box.hidden = false;
}

/** A refusal of the token (bad, expired, revoked, not allowed): the SDK's AuthError, or an API error with such a code. */
export const isAuthError = (err: unknown) => err instanceof AuthError || String((err as { code?: unknown } | undefined)?.code ?? '').startsWith('CASCADE_ERR_AUTH_');

export function friendly(code: string): string {
  if (code.startsWith('CASCADE_ERR_AUTH_')) return 'You are not allowed to broadcast (bad or expired token).';
  if (code === 'CASCADE_ERR_CLIENT_MEDIA') return 'Cannot use the camera.';
  if (code === 'CASCADE_ERR_STREAM_ALREADY_LIVE') return 'This stream already has a broadcaster.';
  if (code === 'CASCADE_ERR_NODE_CAPACITY') return 'The server is full right now.';
  if (code.startsWith('CASCADE_ERR_CLIENT_')) return 'Cannot reach the server.';
  return 'Something went wrong.';
}
