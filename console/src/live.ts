// Live updates: one server-sent event stream (GET /v1/events) for the whole
// console, read with fetch() so that the token travels in the Authorization
// header (EventSource cannot send one). Pages subscribe to events by name; the
// stream reconnects with backoff (1 s doubling to 30 s) and tells subscribers
// to fetch again (`resync`) after a gap. The header shows its state. Pages that
// need data the stream does not carry poll with `whileDown` only while it is down.

import { token } from './api';

export type LiveState = 'connecting' | 'live' | 'down';
type Handler = (data: unknown) => void;

const handlers = new Map<string, Set<Handler>>();
const stateListeners = new Set<(s: LiveState) => void>();
let state: LiveState = 'down';
let controller: AbortController | null = null;
let retry: number | undefined;
let backoff = 1000;
let everConnected = false;

function setState(next: LiveState): void {
  state = next;
  for (const f of stateListeners) f(next);
}

export function liveState(): LiveState {
  return state;
}

export function onLiveState(f: (s: LiveState) => void): () => void {
  stateListeners.add(f);
  return () => stateListeners.delete(f);
}

/** Calls `handler` with each `event`'s parsed data until the returned function is called. */
export function subscribe(event: string, handler: Handler): () => void {
  let set = handlers.get(event);
  if (!set) handlers.set(event, (set = new Set()));
  set.add(handler);
  return () => set!.delete(handler);
}

/** Calls `refresh` every `ms` while the stream is not live (the slow polling
 * fallback; when it comes back, `resync` says to fetch what changed meanwhile);
 * returns how to stop. */
export function whileDown(refresh: () => void, ms = 5000): () => void {
  let timer: number | undefined;
  const arm = (s: LiveState) => {
    window.clearInterval(timer);
    timer = s === 'live' ? undefined : window.setInterval(refresh, ms);
  };
  arm(state);
  const unwatch = onLiveState(arm);
  return () => {
    window.clearInterval(timer);
    unwatch();
  };
}

/** Least time between two `resync` dispatches: under heavy churn the server may
 * send one every batch, and each makes pages fetch everything again. */
const RESYNC_MS = 2000;
let lastResync = 0;
let resyncTimer: number | undefined;

function resync(): void {
  if (resyncTimer !== undefined) return;
  const wait = Math.max(0, lastResync + RESYNC_MS - performance.now());
  resyncTimer = window.setTimeout(() => {
    resyncTimer = undefined;
    lastResync = performance.now();
    deliver('resync', '{}');
  }, wait);
}

/** Events received, by name (read by the benchmark in console/tests/bench.mjs). */
const received: Record<string, number> = {};
(window as unknown as { suanwangLive: Record<string, number> }).suanwangLive = received;

function dispatch(event: string, data: string): void {
  received[event] = (received[event] ?? 0) + 1;
  deliver(event, data);
}

function deliver(event: string, data: string): void {
  const set = handlers.get(event);
  if (!set?.size) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return;
  }
  for (const f of [...set]) f(parsed);
}

/** Opens the stream (once); called by the shell after sign-in. */
export function connect(): void {
  if (controller || !token()) return;
  window.clearTimeout(retry);
  controller = new AbortController();
  setState('connecting');
  run(controller).catch(() => undefined);
}

/** Closes the stream (sign-out). */
export function disconnect(): void {
  window.clearTimeout(retry);
  window.clearTimeout(resyncTimer);
  resyncTimer = undefined;
  controller?.abort();
  controller = null;
  everConnected = false;
  setState('down');
}

async function run(own: AbortController): Promise<void> {
  try {
    const response = await fetch('/v1/events', {
      headers: { authorization: `Bearer ${token()}`, accept: 'text/event-stream' },
      signal: own.signal,
    });
    if (response.status === 401) {
      controller = null;
      setState('down');
      dispatch('unauthorized', '{}');
      return;
    }
    if (!response.ok || !response.body) throw new Error(`${response.status}`);
    backoff = 1000;
    setState('live');
    // After a gap, what pages show may be stale: they fetch again.
    if (everConnected) resync();
    everConnected = true;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') name = text;
          else if (field === 'data') data.push(text);
        }
        if (name === 'resync') {
          received.resync = (received.resync ?? 0) + 1;
          resync();
        } else if (data.length) dispatch(name, data.join('\n'));
      }
    }
  } catch {
    // Aborted, or the connection failed: fall through to a retry.
  }
  if (controller !== own) return; // signed out or replaced
  controller = null;
  setState('down');
  retry = window.setTimeout(connect, backoff);
  backoff = Math.min(backoff * 2, 30000);
}
