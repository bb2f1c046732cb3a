// How smooth the console stays under load: Debian's Chromium (playwright-core)
// opens the map and then the jobs table against a running server and records,
// for SECONDS each, every frame's duration (requestAnimationFrame deltas) and the
// main thread's long tasks (> 50 ms), while live events stream in.
//
//   node console/tests/bench.mjs URL TOKEN [SECONDS]
//
// Prints one JSON line: per page, frames p50/p95/p99/max (ms), long tasks (count,
// total ms, longest), the map's redraws (count, p50, max ms), events received, and
// the first full map render (ms).
// tools/bench-console.sh runs it against 500 sites and 10,000 live jobs.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, token, secondsArg] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node bench.mjs URL TOKEN [SECONDS]');
  process.exit(2);
}
const seconds = Number(secondsArg ?? 20);
const userData = mkdtempSync(join(tmpdir(), 'suanwang-bench-'));
const context = await chromium.launchPersistentContext(userData, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] ?? (await context.newPage());
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));

/** Records frames and long tasks in the page for `seconds`. */
async function measure(name) {
  return page.evaluate(
    async ({ seconds, name }) => {
      const frames = [];
      const longTasks = [];
      const draws = [];
      const observer = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) longTasks.push(e.duration);
      });
      observer.observe({ type: 'longtask', buffered: false });
      // The map's redraws (performance.measure('map-draw') in src/pages/map.ts).
      const drawObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (e.name === 'map-draw') draws.push(e.duration);
      });
      drawObserver.observe({ type: 'measure', buffered: false });
      const before = { ...(window.suanwangLive ?? {}) };
      await new Promise((done) => {
        let last = performance.now();
        const end = last + seconds * 1000;
        const tick = (now) => {
          frames.push(now - last);
          last = now;
          if (now < end) requestAnimationFrame(tick);
          else done();
        };
        requestAnimationFrame(tick);
      });
      observer.disconnect();
      drawObserver.disconnect();
      draws.sort((a, b) => a - b);
      const after = window.suanwangLive ?? {};
      const events = {};
      for (const k of Object.keys(after)) events[k] = after[k] - (before[k] ?? 0);
      frames.sort((a, b) => a - b);
      const q = (p) => Number(frames[Math.min(frames.length - 1, Math.floor(p * frames.length))].toFixed(1));
      return {
        page: name,
        frames: frames.length,
        fps: Number((frames.length / seconds).toFixed(1)),
        frame_ms: { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: Number(frames[frames.length - 1].toFixed(1)) },
        long_tasks: { count: longTasks.length, total_ms: Math.round(longTasks.reduce((a, b) => a + b, 0)), longest_ms: Math.round(Math.max(0, ...longTasks)) },
        map_draws: draws.length ? { count: draws.length, p50_ms: Math.round(draws[Math.floor(draws.length / 2)]), max_ms: Math.round(draws[draws.length - 1]) } : null,
        events,
      };
    },
    { seconds, name },
  );
}

const result = { url, seconds };
try {
  await page.goto(`${url}/`);
  await page.waitForSelector('form.login');
  await page.fill('#token', token);
  await page.click('form.login button[type=submit]');
  await page.waitForSelector('#map[data-first-render-ms]', { timeout: 60000 });
  result.first_map_render_ms = Number(await page.getAttribute('#map', 'data-first-render-ms'));
  result.sites_drawn = (await page.getAttribute('#map', 'data-rendered-sites')).split(',').length;
  await page.waitForSelector('#live[data-live=live]', { timeout: 30000 });
  result.map = await measure('map');
  result.flows_drawn = Number(await page.getAttribute('#map', 'data-rendered-flows'));
  await page.click('a[data-nav="nav.jobs"]');
  await page.waitForSelector('#jobs-table tbody tr', { timeout: 30000 });
  // The first page: newest first, where new jobs appear live.
  result.jobs = await measure('jobs');
  result.errors = errors;
} finally {
  await context.close();
  rmSync(userData, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
