// End-to-end test of the console in a real browser: Debian's Chromium driven by
// playwright-core (no browser download), against a running server.
//
//   node console/tests/e2e.mjs URL TOKEN SCREENSHOT_DIR
//
// Logs in (a wrong token first), checks that the map drew every site the server
// knows and live flows, switches colouring and language, opens the sites and jobs
// tables, pages through jobs, opens a placed job's explanation (with its chart), a
// site's page and the savings. Then, as a tenant: a refused submission names its
// field, a job submitted through the form is seen placed on its page without a
// reload, a job submitted through the API appears in the jobs table live, and
// another tenant's job is neither listed nor shown, and a job pinned to a drained
// site says why it waits, then shows its placement live. Writes a PNG per page to
// SCREENSHOT_DIR and, last on stdout, one JSON line with what it measured.
// Exits non-zero on the first failed check. CHROMIUM overrides /usr/bin/chromium.
//
// Accessibility: every page (and the states that matter: a refused sign-in, a
// refused field, a job that waits, one that is not found, a failed load) is
// checked with axe-core, in English and in 中文, once it has rendered its data:
// the WCAG 2.0 and 2.1 A and AA rules, and two best-practice rules the console
// keeps too (one h1 per page; no empty table header). Then again in a 320 px
// window (WCAG 1.4.10: a 1280 px screen zoomed to 400%), where the page must
// not scroll sideways either. Every violation is collected and printed (page,
// language, rule, impact, the elements' selectors and why); any makes the test
// fail, after the other checks have run. axe's script comes from
// console/node_modules and is evaluated in the page (no request). The pages
// audited are listed in the JSON line ("audited": "PAGE LANG").

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
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

async function api(path, options = {}, bearer = token) {
  const response = await fetch(`${url}${path}`, {
    ...options,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...(options.headers ?? {}) },
  });
  check(response.ok, `${options.method ?? 'GET'} ${path} answered ${response.status}`);
  return response.json();
}

async function signIn(bearer) {
  if (await page.$('#signout')) await page.click('#signout');
  await page.waitForSelector('form.login');
  await page.fill('#token', bearer);
  await page.click('form.login button[type=submit]');
  await page.waitForSelector('main[data-page=map]');
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
// Refusals the test provokes on purpose (a wrong token, a bad field, another
// tenant's job) are logged by Chromium as failed loads: those are expected.
// (503: the failed load the test fakes to check the error state.)
const expected = /Failed to load resource: the server responded with a status of (401|404|422|503)/;
page.on('console', (m) => m.type() === 'error' && !expected.test(m.text()) && errors.push(m.text()));
// Nothing may be fetched from anywhere but the server under test.
const origin = new URL(url).origin;
const foreign = [];
page.on('request', (r) => {
  if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url());
});
/** A screenshot of the page as it is; the page must fit the window's width
 * (1280 px, or 320 px for the narrow pass: nothing may scroll sideways but a
 * table inside its own box). */
const shot = async (name) => {
  await page.screenshot({ path: join(shots, `${name}.png`) });
  if (name === 'failure') return;
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= width, `${name}: the page is ${scroll} px wide in a ${width} px window`);
};
const result = {};

// axe-core, from console/node_modules (never fetched: see `foreign`).
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
/** The rules every page is held to: WCAG 2.0 and 2.1, levels A and AA. */
const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
/** Best-practice rules (not WCAG success criteria) held to as well. */
const ALSO = ['page-has-heading-one', 'empty-table-header'];
/** What axe found, and which page in which language it looked at. */
const violations = [];
result.audited = [];

/** Runs axe on the page as it is now, recording each violation under `name` and
 * the page's language. */
async function audit(name) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const { lang, found } = await page.evaluate(
    async ([tags, also]) => {
      const r = await window.axe.run(document, {
        runOnly: { type: 'tag', values: tags },
        rules: Object.fromEntries(also.map((id) => [id, { enabled: true }])),
        resultTypes: ['violations'],
      });
      return {
        lang: document.documentElement.lang,
        found: r.violations.map((v) => ({
          rule: v.id,
          impact: v.impact,
          help: v.help,
          nodes: v.nodes.map((n) => ({ target: n.target.join(' '), why: (n.failureSummary ?? '').split('\n').slice(1).join(' ').trim() })),
        })),
      };
    },
    [WCAG, ALSO],
  );
  result.audited.push(`${name} ${lang}`);
  for (const v of found) violations.push({ page: name, lang, ...v });
}

/** Audits the page in its language and in the other one: `ready` waits until
 * the page shows its data (and sets up the state to check; the page is drawn
 * again when the language changes). Leaves the page in its first language. */
async function auditBoth(name, ready) {
  const other = async () => {
    const before = await page.evaluate(() => document.documentElement.lang);
    await page.click('#lang');
    await page.waitForFunction((l) => document.documentElement.lang !== l, before);
    await ready();
  };
  await ready();
  await audit(name);
  await other();
  await audit(name);
  await other();
}

/** Every violation found, one block each, for the test's output. */
function accessibilityReport() {
  if (!violations.length) return '';
  const lines = [`accessibility: ${violations.length} violation(s) of WCAG 2.0/2.1 A/AA (axe-core ${JSON.parse(readFileSync(createRequire(import.meta.url).resolve('axe-core/package.json'), 'utf8')).version}):`];
  for (const v of violations) {
    lines.push(`- page ${v.page} [${v.lang}] rule ${v.rule} (${v.impact}): ${v.help}`);
    for (const n of v.nodes) lines.push(`    ${n.target}${n.why ? `  — ${n.why}` : ''}`);
  }
  return lines.join('\n');
}

try {
  // Login: no token sends us to the login page; a wrong token is refused clearly.
  await page.goto(`${url}/`);
  await page.waitForSelector('form.login');
  check(page.url().endsWith('#/login'), `no token lands on the login page, not ${page.url()}`);
  await auditBoth('login', () => page.waitForSelector('form.login'));
  await page.fill('#token', 'sw_not_a_real_token');
  await page.click('form.login button[type=submit]');
  await page.waitForFunction(() => /rejected/.test(document.querySelector('#login-message')?.textContent ?? ''));
  await shot('login-refused');
  await auditBoth('login-refused', async () => {
    await page.fill('#token', 'sw_not_a_real_token');
    await page.click('form.login button[type=submit]');
    await page.waitForFunction(
      () => (document.querySelector('#login-message')?.textContent ?? '') !== '' && !document.querySelector('form.login button[type=submit]')?.disabled,
    );
  });
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
  await auditBoth('map', () =>
    page.waitForFunction(
      (n) => (document.querySelector('#map')?.getAttribute('data-rendered-sites') ?? '').split(',').filter(Boolean).length === n,
      sites.length,
      { timeout: 15000 },
    ),
  );

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
  await auditBoth('sites', () => page.waitForSelector('#sites-table tbody tr'));
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('header nav')?.textContent?.includes('Network map'));

  // Jobs table and its pages.
  await page.click('a[data-nav="nav.jobs"]');
  await page.waitForSelector('#jobs-table tbody tr', { timeout: 15000 });
  const firstPage = await page.$$eval('#jobs-table tbody tr', (trs) => trs.map((tr) => Number(tr.getAttribute('data-job'))));
  check(firstPage.length > 0, 'jobs table has rows');
  await shot('jobs');
  // The state filter redraws the page; the keyboard stays on it (arrow keys
  // change a closed select's value one step at a time).
  await page.focus('#state-filter');
  await page.$eval('#state-filter', (select) => select.setAttribute('data-drawn-before', ''));
  await page.keyboard.press('ArrowDown');
  await page.waitForSelector('#state-filter:not([data-drawn-before])');
  check((await page.evaluate(() => document.activeElement?.id)) === 'state-filter', 'the state filter keeps the focus as the page redraws');
  await page.goto(`${url}/#/jobs`);
  await auditBoth('jobs', () => page.waitForSelector('#jobs-table tbody tr', { timeout: 15000 }));
  if (await page.isEnabled('#next')) {
    // Newest first: page 2 continues below the oldest row page 1 shows (new
    // jobs keep arriving at the top of page 1 meanwhile).
    const shown = await page.$$eval('#jobs-table tbody tr', (trs) => trs.map((tr) => Number(tr.getAttribute('data-job'))));
    check(shown.every((id, i) => i === 0 || id < shown[i - 1]), `page 1 is newest first: ${shown}`);
    await page.click('#next');
    // The cursor is the oldest row page 1 showed when "Next" was clicked: the
    // oldest read above, or a newer one if new jobs pushed rows off page 1 since.
    await page.waitForFunction(() => /[?&]before=\d+/.test(location.hash));
    const cursor = Number(/[?&]before=(\d+)/.exec(new URL(page.url()).hash)[1]);
    check(cursor >= shown[shown.length - 1], `page 2 starts below a row page 1 showed (${cursor}, oldest shown ${shown.at(-1)})`);
    await page.waitForFunction(
      (oldest) => Number(document.querySelector('#jobs-table tbody tr')?.getAttribute('data-job')) < oldest,
      cursor,
    );
    const secondPage = await page.$$eval('#jobs-table tbody tr', (trs) => trs.map((tr) => Number(tr.getAttribute('data-job'))));
    check(secondPage[0] < cursor, `page 2 (${secondPage[0]}…) follows page 1 (…${cursor})`);
    await page.click('#prev');
    await page.waitForFunction((newest) => Number(document.querySelector('#jobs-table tbody tr')?.getAttribute('data-job')) >= newest, shown[0]);
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
  await page.waitForSelector('#explanation .terms-chart canvas');
  await shot('job');
  await auditBoth('job', () => page.waitForSelector('#explanation .terms-chart canvas'));

  // The live stream is up, and the map draws the live flows.
  await page.waitForSelector('#live[data-live=live]', { timeout: 10000 });
  await page.click('a[data-nav="nav.map"]');
  await page.waitForFunction(() => Number(document.querySelector('#map')?.getAttribute('data-rendered-flows') ?? 0) > 0, null, { timeout: 20000 });
  result.flows_drawn = Number(await page.getAttribute('#map', 'data-rendered-flows'));
  await page.waitForTimeout(500);
  await shot('map-flows');
  // The moving flows can be paused (WCAG 2.2.2), and started again.
  check((await page.getAttribute('#map', 'data-moving')) === 'true', 'the busiest flows move');
  await page.click('#motion');
  await page.waitForSelector('#map[data-moving=false]');
  check((await page.getAttribute('#motion', 'aria-pressed')) === 'true', 'the pause button says it is pressed');
  await page.click('#motion');
  await page.waitForSelector('#map[data-moving=true]');

  // A site's page: use by class, price and carbon over time, what agents report.
  await page.goto(`${url}/#/site/hami`);
  await page.waitForSelector('#site-use canvas');
  await page.waitForSelector('#site-series canvas');
  check(/model/.test(await page.textContent('#series-label')), 'the series says where actual values come from');
  check((await page.textContent('#site-now')).length > 0, 'figures now');
  await page.waitForTimeout(300);
  await shot('site');
  await auditBoth('site', async () => {
    await page.waitForSelector('#site-use canvas');
    await page.waitForSelector('#site-series canvas');
    await page.waitForSelector('#site-now');
  });

  // Savings against local-fifo, for the network and per tenant.
  await page.goto(`${url}/#/savings`);
  await page.waitForSelector('#savings-network', { timeout: 15000 });
  const compared = Number(await page.textContent('#savings-network [data-field=jobs]').then((s) => s.split(' ')[0]));
  check(compared > 0, `savings compare some jobs (${compared})`);
  await page.waitForSelector('#savings-chart canvas');
  await shot('savings');
  await auditBoth('savings', () => page.waitForSelector('#savings-chart canvas'));

  // A narrow window: 320 px, a 1280 px screen zoomed to 400% (WCAG 1.4.10). Every
  // page reflows to one column and scrolls sideways only inside a table's own box
  // (which then takes focus, so that the keyboard scrolls it too).
  await page.setViewportSize({ width: 320, height: 800 });
  const narrow = [
    ['map', () => page.waitForFunction((n) => (document.querySelector('#map')?.getAttribute('data-rendered-sites') ?? '').split(',').filter(Boolean).length === n, sites.length, { timeout: 15000 })],
    ['sites', () => page.waitForSelector('#sites-table tbody tr')],
    ['jobs', () => page.waitForSelector('#jobs-table tbody tr', { timeout: 15000 })],
    [`job/${placed.id}`, () => page.waitForSelector('#explanation .terms-chart canvas')],
    ['site/hami', () => page.waitForSelector('#site-series canvas')],
    ['savings', () => page.waitForSelector('#savings-chart canvas')],
    ['submit', () => page.waitForSelector('#submit-form')],
  ];
  for (const [route, ready] of narrow) {
    const name = `${route.split('/')[0]}-320px`;
    await page.goto(`${url}/#/${route}`);
    await ready();
    await shot(name);
    await auditBoth(name, ready);
  }
  await page.setViewportSize({ width: 1280, height: 800 });

  // A page that could not load its data shows why, with a retry button.
  await page.route('**/v1/savings**', (route) =>
    route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ code: 'unavailable', message: 'the store is not answering' }) }),
  );
  await page.goto(`${url}/#/savings`);
  await auditBoth('load-failed', () => page.waitForSelector('[data-state=error]'));
  await page.unroute('**/v1/savings**');

  // Two tenants, issued by the admin.
  const issue = (tenant) => api('/v1/tokens', { method: 'POST', body: JSON.stringify({ role: 'tenant', tenant }) });
  const alpha = (await issue('e2e-alpha')).token;
  const beta = (await issue('e2e-beta')).token;
  const theirs = await api('/v1/jobs', { method: 'POST', body: JSON.stringify({ demand: [{ class: 'cpu', count: 2 }], duration: '30m' }) }, beta);

  // Submit through the form, as alpha: a refusal names the field first.
  await signIn(alpha);
  await page.click('a[data-nav="nav.submit"]');
  await page.waitForSelector('#submit-form');
  await auditBoth('submit', () => page.waitForSelector('#submit-form'));
  await page.click('button[data-template=training]');
  check((await page.inputValue('#demand-0-class')) === 'a800', 'the training template asks for A800s');
  await page.fill('#duration', 'soon');
  await page.click('#submit-job');
  await page.waitForFunction(() => (document.querySelector('[data-error-for="/duration"]')?.textContent ?? '').length > 0);
  check((await page.getAttribute('#duration', 'aria-invalid')) === 'true', 'the refused field is marked invalid');
  check(
    (await page.getAttribute('#duration', 'aria-describedby')).split(' ').includes(await page.getAttribute('[data-error-for="/duration"]', 'id')),
    'the refused field is described by its error',
  );
  await shot('submit-refused');
  // (The form is drawn again in the other language: the same refusal there.)
  await auditBoth('submit-refused', async () => {
    await page.waitForSelector('#submit-form');
    await page.click('button[data-template=training]');
    await page.fill('#duration', 'soon');
    await page.click('#submit-job');
    await page.waitForFunction(() => (document.querySelector('[data-error-for="/duration"]')?.textContent ?? '').length > 0);
  });
  await page.fill('#duration', '2h');
  await shot('submit');
  await page.click('#submit-job');
  await page.waitForFunction(() => /^#\/job\/\d+$/.test(location.hash), null, { timeout: 10000 });
  const submitted = Number(page.url().split('/').pop());
  // Placed, seen on the open page without a reload (the live stream).
  await page.waitForFunction(
    () => ['Placed', 'Dispatched', 'Running', 'Succeeded'].includes(document.querySelector('#job-state')?.getAttribute('data-state') ?? ''),
    null,
    { timeout: 20000 },
  );
  await page.waitForSelector('#explanation .terms-chart canvas');
  result.submitted = submitted;
  await shot('submitted-job');

  // The jobs table follows the stream: a job submitted elsewhere appears, then moves on.
  await page.click('a[data-nav="nav.jobs"]');
  await page.waitForSelector(`#jobs-table tbody tr[data-job="${submitted}"]`);
  const another = await api('/v1/jobs', { method: 'POST', body: JSON.stringify({ demand: [{ class: 'cpu', count: 4 }], duration: '1h', origin: 'chengdu' }) }, alpha);
  await page.waitForSelector(`#jobs-table tbody tr[data-job="${another.id}"]`, { timeout: 10000 });
  await page.waitForSelector(`#jobs-table tbody tr[data-job="${another.id}"]:not([data-state=Pending])`, { timeout: 20000 });
  result.live_row = another.id;

  // Beta's job is not alpha's to see: not listed, and its page says so.
  const listed = await page.$$eval('#jobs-table tbody tr', (trs) => trs.map((tr) => Number(tr.getAttribute('data-job'))));
  check(!listed.includes(theirs.id), `alpha's table lists beta's job ${theirs.id}`);
  await page.goto(`${url}/#/job/${theirs.id}`);
  await page.waitForSelector('[data-state=not-found]');
  check(!(await page.textContent('main')).includes('"demand"'), 'no trace of the job');
  await shot('job-not-yours');
  await auditBoth('job-not-found', () => page.waitForSelector('[data-state=not-found]'));

  // Why a job waits, then its placement, live: with zhongwei drained, a job pinned
  // there waits and its page says why; undrained, the page shows it placed.
  const adminPost = (path) => api(path, { method: 'POST' });
  await adminPost('/v1/sites/zhongwei/drain');
  try {
    const pinned = await api('/v1/jobs', { method: 'POST', body: JSON.stringify({ demand: [{ class: 'cpu', count: 2 }], duration: '1h', site: 'zhongwei' }) }, alpha);
    await page.goto(`${url}/#/job/${pinned.id}`);
    await page.waitForFunction(() => /drained or unreachable/.test(document.querySelector('#why-pending')?.textContent ?? ''), null, { timeout: 20000 });
    // Site by site: zhongwei says drained; the history has the change.
    await page.waitForSelector('#wait-sites tr[data-site=zhongwei][data-reason=drained]', { timeout: 20000 });
    await page.waitForSelector('#wait-history tbody tr[data-reason=sites-unavailable]', { timeout: 20000 });
    await shot('job-pending');
    await auditBoth('job-pending', () => page.waitForSelector('#wait-sites tr[data-reason=drained]'));
    await adminPost('/v1/sites/zhongwei/undrain');
    await page.waitForFunction(
      () => document.querySelector('#job-state')?.getAttribute('data-state') !== 'Pending' && !document.querySelector('#why-pending'),
      null,
      { timeout: 20000 },
    );
    // Placed: no current reason, the history stays.
    check(!(await page.$('#wait-sites')), 'a placed job shows no current reason');
    check(!!(await page.$('#wait-history tbody tr[data-reason=sites-unavailable]')), 'the history stays once placed');
    result.pending_then_placed = pinned.id;
  } finally {
    await adminPost('/v1/sites/zhongwei/undrain').catch(() => {});
  }

  // An ordered spill-over list: hami has no H800, so the job passes over its
  // first choice (too small) and goes to its second; the page says so, site by site.
  const spilled = await api(
    '/v1/jobs',
    { method: 'POST', body: JSON.stringify({ demand: [{ class: 'h800', count: 1 }], duration: '1h', spill: ['site:hami', 'anywhere'] }) },
    alpha,
  );
  await page.goto(`${url}/#/job/${spilled.id}`);
  await page.waitForSelector('#explanation table.passed-over tr[data-choice="site:hami"][data-reason=too-small]', { timeout: 20000 });
  check((await page.getAttribute('#explanation p.spill', 'data-choice')) === 'anywhere', 'placed from its second choice');
  await shot('job-spilled');
  await auditBoth('job-spilled', () => page.waitForSelector('#explanation table.passed-over tr[data-choice]'));
  result.spilled = spilled.id;

  check(errors.length === 0, `no page errors: ${errors.join(' | ')}`);
  check(foreign.length === 0, `nothing fetched from elsewhere: ${foreign.join(' ')}`);
  check(violations.length === 0, accessibilityReport());
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(String(e?.stack ?? e));
  // What axe found before another check failed.
  if (violations.length && !String(e).includes('accessibility:')) console.error(accessibilityReport());
  await context.close();
  rmSync(userData, { recursive: true, force: true });
  process.exit(1);
}
await context.close();
rmSync(userData, { recursive: true, force: true });
console.log(JSON.stringify(result));
