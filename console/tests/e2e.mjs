// End-to-end test of the console in a real browser: Debian's Chromium driven by
// playwright-core (no browser download), against a running server.
//
//   node console/tests/e2e.mjs URL TOKEN SCREENSHOT_DIR
//
// Logs in (a wrong token first), checks that the map drew every site the server
// knows, switches colouring and language, opens the sites and jobs tables, pages
// through jobs and opens a placed job's explanation. Writes a PNG per page to
// SCREENSHOT_DIR and, last on stdout, one JSON line with what it measured.
// Exits non-zero on the first failed check. CHROMIUM overrides /usr/bin/chromium.

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, token, shots] = process.argv.slice(2);
if (!url || !token || !shots) {
  console.error('usage: node e2e.mjs URL TOKEN SCREENSHOT_DIR');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function api(path) {
  const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  check(response.ok, `${path} answered ${response.status}`);
  return response.json();
}

const userData = mkdtempSync(join(tmpdir(), 'suanwang-chromium-'));
const context = await chromium.launchPersistentContext(userData, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => m.type() === 'error' && !/401/.test(m.text()) && errors.push(m.text()));
// Nothing may be fetched from anywhere but the server under test.
const origin = new URL(url).origin;
const foreign = [];
page.on('request', (r) => {
  if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url());
});
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
const result = {};

try {
  // Login: no token sends us to the login page; a wrong token is refused clearly.
  await page.goto(`${url}/`);
  await page.waitForSelector('form.login');
  check(page.url().endsWith('#/login'), `no token lands on the login page, not ${page.url()}`);
  await page.fill('#token', 'sw_not_a_real_token');
  await page.click('form.login button[type=submit]');
  await page.waitForFunction(() => /rejected/.test(document.querySelector('#login-message')?.textContent ?? ''));
  await shot('login-refused');
  await page.fill('#token', token);
  await page.click('form.login button[type=submit]');
  await page.waitForSelector('main[data-page=map]');

  // The map: every site the server knows, drawn inside the canvas.
  const sites = (await api('/v1/sites')).map((s) => s.id).sort();
  check(sites.length >= 5, `the demo has its sites (${sites.length})`);
  const drawn = async () =>
    (await page.getAttribute('#map', 'data-rendered-sites')) ?? '';
  await page.waitForFunction(
    (n) => (document.querySelector('#map')?.getAttribute('data-rendered-sites') ?? '').split(',').filter(Boolean).length === n,
    sites.length,
    { timeout: 15000 },
  );
  check((await drawn()) === sites.join(','), `map drew ${await drawn()}, server has ${sites.join(',')}`);
  result.sites = sites;
  await page.waitForTimeout(300);
  await shot('map');

  // First meaningful paint: reload the map and read when it first drew every site
  // (performance.now() counts from the navigation's start).
  const paints = [];
  for (let i = 0; i < 5; i++) {
    await page.reload();
    await page.waitForSelector('#map[data-first-render-ms]', { timeout: 15000 });
    paints.push(Number(await page.getAttribute('#map', 'data-first-render-ms')));
  }
  paints.sort((a, b) => a - b);
  result.first_map_render_ms = paints;
  result.first_map_render_median_ms = paints[Math.floor(paints.length / 2)];

  // Colour by green share.
  await page.click('button[data-metric=green]');
  check((await page.getAttribute('button[data-metric=green]', 'aria-checked')) === 'true', 'green switch is on');
  await page.waitForTimeout(300);
  await shot('map-green');
  await page.click('button[data-metric=carbon]');

  // 中文, remembered across a reload.
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('header nav')?.textContent?.includes('网络地图'));
  check((await page.textContent('aside')).includes('着色依据'), 'the map panel speaks Chinese');
  await page.reload();
  await page.waitForSelector('main[data-page=map]');
  check((await page.textContent('header nav')).includes('网络地图'), 'Chinese is remembered');
  await page.waitForSelector('#map[data-first-render-ms]');
  await page.waitForTimeout(300);
  await shot('map-zh');

  // Sites table (in Chinese): one row per site.
  await page.click('a[data-nav="nav.sites"]');
  await page.waitForSelector('#sites-table tbody tr');
  const rows = await page.$$eval('#sites-table tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-site')).sort());
  check(rows.join(',') === sites.join(','), `sites table rows ${rows}`);
  check((await page.textContent('#sites-table thead')).includes('站点'), 'sites table headers in Chinese');
  await shot('sites-zh');
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('header nav')?.textContent?.includes('Network map'));

  // Jobs table and its pages.
  await page.click('a[data-nav="nav.jobs"]');
  await page.waitForSelector('#jobs-table tbody tr', { timeout: 15000 });
  const firstPage = await page.$$eval('#jobs-table tbody tr', (trs) => trs.map((tr) => Number(tr.getAttribute('data-job'))));
  check(firstPage.length > 0, 'jobs table has rows');
  await shot('jobs');
  if (await page.isEnabled('#next')) {
    await page.click('#next');
    await page.waitForFunction(
      (first) => {
        const id = Number(document.querySelector('#jobs-table tbody tr')?.getAttribute('data-job'));
        return id > first;
      },
      firstPage[firstPage.length - 1] - 1,
    );
    const secondPage = await page.$$eval('#jobs-table tbody tr', (trs) => trs.map((tr) => Number(tr.getAttribute('data-job'))));
    check(secondPage[0] > firstPage[firstPage.length - 1], `page 2 (${secondPage[0]}…) follows page 1 (…${firstPage.at(-1)})`);
    await page.click('#prev');
    await page.waitForFunction((first) => Number(document.querySelector('#jobs-table tbody tr')?.getAttribute('data-job')) === first, firstPage[0]);
    result.paged = true;
  }

  // A placed job's page: its state, timeline and the candidates weighed.
  let placed = null;
  for (let i = 0; i < 40 && !placed; i++) {
    const { jobs } = await api('/v1/jobs?limit=200');
    placed = jobs.find((j) => j.site && ['Running', 'Succeeded', 'Dispatched', 'Placed'].includes(j.state));
    if (!placed) await new Promise((r) => setTimeout(r, 500));
  }
  check(placed, 'some job was placed');
  await page.goto(`${url}/#/job/${placed.id}`);
  await page.waitForSelector('#explanation .decision');
  const explanation = await page.textContent('#explanation');
  check(/placed/.test(explanation), `the explanation says placed: ${explanation.slice(0, 200)}`);
  check((await page.$$('#explanation table.candidates tbody tr')).length >= 1, 'candidates listed');
  check((await page.textContent('#timeline')).includes('Submitted'), 'timeline shown');
  check((await page.textContent('#job-state')).length > 0, 'state shown');
  result.job = placed.id;
  await shot('job');

  check(errors.length === 0, `no page errors: ${errors.join(' | ')}`);
  check(foreign.length === 0, `nothing fetched from elsewhere: ${foreign.join(' ')}`);
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(String(e?.stack ?? e));
  await context.close();
  rmSync(userData, { recursive: true, force: true });
  process.exit(1);
}
await context.close();
rmSync(userData, { recursive: true, force: true });
console.log(JSON.stringify(result));
