// One job: its state and timeline, the scheduler's decisions (the candidates
// weighed, each score term as a stacked bar and in a table; why it waits if it
// does), and the tail of its log. Reloads when the live stream reports the job.

import * as echarts from 'echarts/core';
import { BarChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { ApiError, get, type Explanation, type JobDoc, type Logs, type PassedOver, type WaitDoc } from '../api';
import { describeChart, failure, h, loading, scrollRegion, tableBox, time } from '../dom';
import { stateName, t } from '../i18n';
import { subscribe, whileDown } from '../live';
import { onAuthError, type Page } from '../session';

echarts.use([BarChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

interface Candidate {
  site: string;
  score: number;
  compute_cny: number;
  energy_cny: number;
  carbon_kg: number;
  transfer_cny: number;
  wait_h: number;
}

export const jobPage: Page = (root, _params, arg) => {
  const id = Number(arg);
  const body = h('div', {}, loading());
  root.append(h('p', {}, h('a', { href: '#/jobs' }, t('job.back'))), h('h1', {}, t('job.title', `#${arg ?? ''}`)), body);
  let stopped = false;
  let charts: echarts.ECharts[] = [];
  let reload: number | undefined;
  const unsubscribe = [
    subscribe('jobs', (data) => {
      if ((data as { jobs: JobDoc[] }).jobs.some((j) => j.id === id)) {
        // Coalesce bursts of changes into one reload.
        window.clearTimeout(reload);
        reload = window.setTimeout(load, 150);
      }
    }),
    subscribe('resync', () => load()),
    whileDown(load),
  ];

  async function load(): Promise<void> {
    try {
      const [explanation, logs] = await Promise.all([
        get<Explanation>(`/v1/jobs/${id}/explain`),
        get<Logs>(`/v1/jobs/${id}/logs`).catch(() => null),
      ]);
      if (stopped) return;
      const job = explanation.job;
      for (const c of charts) c.dispose();
      charts = [];
      // The latest decision says why a pending job waits; none yet: not weighed.
      const last = explanation.decisions[explanation.decisions.length - 1];
      const current = explanation.wait;
      const waiting =
        job.state !== 'Pending' ? null : current ? reasonText(current) : last?.outcome === 'pending' ? reasonText(last.reason) : t('job.wait.unplanned');
      const row = (key: Parameters<typeof t>[0], value: string | number) => [h('dt', {}, t(key)), h('dd', {}, String(value))];
      // The spec and the log scroll in their own boxes, named by these headings.
      const specTitle = h('h2', { id: 'spec-title' }, t('job.spec'));
      const logsTitle = h('h2', { id: 'logs-title' }, t('job.logs'));
      body.replaceChildren(
        h(
          'div',
          { class: 'job-grid' },
          h(
            'section',
            { class: 'card' },
            h('p', {}, h('span', { class: `pill ${job.state}`, id: 'job-state', 'data-state': job.state }, stateName(job.state))),
            waiting ? h('p', { class: 'why-pending', id: 'why-pending', role: 'status' }, h('strong', {}, t('job.whyPending')), ' ', waiting) : null,
            job.state === 'Pending' && current ? waitDetail(current) : null,
            explanation.wait_history?.length ? waitHistory(explanation.wait_history) : null,
            h(
              'dl',
              { class: 'fields' },
              ...row('job.site', job.site ?? '—'),
              ...row('job.exit', job.exit_code ?? '—'),
              ...row('job.attempt', job.attempt),
              ...row('job.agent', job.agent ?? '—'),
            ),
            h('h2', {}, t('job.timeline')),
            h(
              'dl',
              { class: 'fields', id: 'timeline' },
              ...row('job.submitted', time(job.created_at)),
              ...row('job.startAt', time(job.start_at)),
              ...row('job.started', time(job.started_at)),
              ...row('job.finished', time(job.finished_at)),
              ...row('job.updated', time(job.updated_at)),
            ),
            specTitle,
            scrollRegion(h('pre', { class: 'spec' }, JSON.stringify(job.spec, null, 2)), specTitle),
          ),
          h(
            'section',
            { class: 'card', id: 'explanation' },
            h('h2', {}, t('job.explanation')),
            ...explanation.decisions.map((d, i) => decision(d, i + 1, charts)),
            logsTitle,
            scrollRegion(h('pre', { class: 'logs' }, logs?.tail ? logs.tail : t('job.nologs')), logsTitle),
          ),
        ),
      );
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      // Another tenant's job is not there, as far as this caller can tell.
      const notFound = e instanceof ApiError && e.status === 404;
      body.replaceChildren(
        notFound
          ? h('div', { class: 'state empty', 'data-state': 'not-found', role: 'alert' }, t('job.notFound', `#${arg ?? ''}`))
          : failure((e as Error).message, load),
      );
    }
  }

  const resize = () => charts.forEach((c) => c.resize());
  window.addEventListener('resize', resize);
  load();
  return () => {
    stopped = true;
    window.clearTimeout(reload);
    window.removeEventListener('resize', resize);
    for (const f of unsubscribe) f();
    for (const c of charts) c.dispose();
  };
};

const TERMS = [
  ['compute', 'cand.compute', '#4c78a8'],
  ['energy', 'cand.energy', '#f58518'],
  ['carbon', 'cand.carbonCny', '#54a24b'],
  ['transfer', 'cand.transfer', '#b279a2'],
  ['wait', 'cand.waitCny', '#9d755d'],
] as const;

/** The policy's weights, as stored with a placement. */
interface Weights {
  price: number;
  energy: number;
  carbon_cny_per_t: number;
  transfer: number;
}

/** Each candidate's score as stacked terms in CNY, as the policy weighs them:
 * compute, energy, carbon (at the policy's carbon price), transfer, and waiting
 * (with lateness: the rest of the score). The bars add up to the score. */
function termsChart(candidates: Candidate[], weights: Weights, charts: echarts.ECharts[]): HTMLElement {
  const box = h('div', { class: 'terms-chart', 'data-candidates': candidates.length });
  describeChart(box, t('job.chartAlt', candidates[0]?.site ?? '—'));
  const value = (c: Candidate, key: (typeof TERMS)[number][0]) => {
    const parts = {
      compute: weights.price * c.compute_cny,
      energy: weights.energy * c.energy_cny,
      carbon: (weights.carbon_cny_per_t / 1000) * c.carbon_kg,
      transfer: weights.transfer * c.transfer_cny,
    };
    if (key !== 'wait') return parts[key];
    return Math.max(0, c.score - parts.compute - parts.energy - parts.carbon - parts.transfer);
  };
  requestAnimationFrame(() => {
    if (!box.isConnected) return;
    const chart = echarts.init(box, undefined, { renderer: 'canvas' });
    charts.push(chart);
    chart.setOption({
      animation: false,
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v: number) => `${v.toFixed(2)} CNY` },
      legend: { top: 0, textStyle: { fontSize: 11 } },
      grid: { left: 110, right: 24, top: 32, bottom: 24 },
      xAxis: { type: 'value', name: 'CNY', nameLocation: 'end' },
      yAxis: {
        type: 'category',
        inverse: true,
        data: candidates.map((c, i) => (i === 0 ? `✓ ${c.site}` : c.site)),
        axisLabel: { fontWeight: 'normal' },
      },
      series: TERMS.map(([key, label, color]) => ({
        type: 'bar',
        stack: 'score',
        name: t(label),
        itemStyle: { color },
        data: candidates.map((c) => Number(value(c, key).toFixed(4))),
      })),
    });
  });
  return box;
}

/** A decision's reason in words: a pending one is `{"reason": "no-capacity-in-horizon"}`
 * (translated), a rejection or requeue a sentence from the server. */
function reasonText(reason: unknown): string {
  const code = typeof reason === 'object' && reason !== null ? (reason as { reason?: unknown }).reason : undefined;
  if (code === 'no-capacity-in-horizon' || code === 'sites-unavailable' || code === 'quota') return t(`job.wait.${code}`);
  if (code === 'measured-below-declared') {
    const detail = (reason as { detail?: unknown }).detail;
    return t('job.wait.measured-below-declared') + (typeof detail === 'string' ? ` (${detail})` : '');
  }
  if (code === 'not-considered') return t('job.wait.unplanned');
  if (typeof code === 'string') return code;
  return typeof reason === 'string' ? reason : JSON.stringify(reason);
}

/** The current wait: the earliest start and each site's binding reason. */
function waitDetail(wait: WaitDoc): HTMLElement {
  const heading = h('h2', { id: 'wait-sites-title' }, t('job.wait.sites'));
  const earliest = h(
    'p',
    { id: 'wait-earliest' },
    wait.earliest_start != null ? t('job.wait.earliest', time(wait.earliest_start)) : t('job.wait.noEarliest'),
  );
  const sites = wait.sites ?? [];
  if (!sites.length) return h('div', { id: 'wait-sites' }, earliest);
  return h(
    'div',
    { id: 'wait-sites' },
    earliest,
    heading,
    tableBox(
      h(
        'table',
        { class: 'wait-sites' },
        h('thead', {}, h('tr', {}, ...(['job.wait.site', 'job.wait.reason', 'job.wait.until'] as const).map((k) => h('th', { scope: 'col' }, t(k))))),
        h(
          'tbody',
          {},
          ...sites.map((s) =>
            h(
              'tr',
              { 'data-site': s.site, 'data-reason': s.reason },
              h('td', {}, s.site),
              h('td', { title: s.detail }, t(`job.site.${s.reason}`)),
              h('td', {}, time(s.until)),
            ),
          ),
        ),
      ),
      heading,
    ),
  );
}

/** The spill-over choice a job was placed from, and each earlier choice
 * passed over with its sites' reasons. */
function spillDetail(choice: string, passed: PassedOver[], n: number): HTMLElement {
  if (!passed.length) return h('p', { class: 'spill', 'data-choice': choice }, t('job.spill.first', choice));
  const heading = h('p', { id: `spill-${n}`, class: 'spill', 'data-choice': choice }, t('job.spill.from', choice));
  const rows = passed.flatMap((o) =>
    o.sites.length
      ? o.sites.map((s) =>
          h(
            'tr',
            { 'data-choice': o.choice, 'data-site': s.site, 'data-reason': s.reason },
            h('td', {}, o.choice),
            h('td', {}, s.site),
            h('td', { title: s.detail }, t(`job.site.${s.reason}`)),
            h('td', {}, time(s.until)),
          ),
        )
      : [h('tr', { 'data-choice': o.choice }, h('td', {}, o.choice), h('td', {}, '—'), h('td', {}, t('job.spill.none')), h('td', {}, '—'))],
  );
  return h(
    'div',
    { class: 'passed-over' },
    heading,
    tableBox(
      h(
        'table',
        { class: 'passed-over' },
        h('thead', {}, h('tr', {}, ...(['job.spill.choice', 'job.wait.site', 'job.wait.reason', 'job.wait.until'] as const).map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, ...rows),
      ),
      heading,
    ),
  );
}

/** The changes of the job's reason for waiting, newest first. */
function waitHistory(history: WaitDoc[]): HTMLElement {
  const heading = h('h2', { id: 'wait-history-title' }, t('job.wait.history'));
  return h(
    'div',
    { id: 'wait-history' },
    heading,
    tableBox(
      h(
        'table',
        { class: 'wait-history' },
        h('thead', {}, h('tr', {}, ...(['job.wait.since', 'job.wait.reason', 'job.wait.earliestCol'] as const).map((k) => h('th', { scope: 'col' }, t(k))))),
        h(
          'tbody',
          {},
          ...history.map((w) => h('tr', { 'data-reason': w.reason }, h('td', {}, time(w.at)), h('td', {}, reasonText(w)), h('td', {}, time(w.earliest_start)))),
        ),
      ),
      heading,
    ),
  );
}

function decision(d: Record<string, unknown>, n: number, charts: echarts.ECharts[]): HTMLElement {
  const outcome = String(d.outcome ?? '?');
  const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  const heading = h('h3', { id: `decision-${n}` }, t('job.decision', n), ': ', outcome, d.policy ? ` (${text(d.policy)})` : '');
  const box = h('div', { class: 'decision', 'data-outcome': outcome }, heading);
  if (d.reason !== undefined) box.append(h('p', { class: 'reason' }, reasonText(d.reason)));
  const preempts = (d.preempts as { job: number; class: string; attempt: number; site: string; ran_secs: number; lost_cny: number }[] | undefined) ?? [];
  for (const p of preempts) {
    box.append(h('p', { class: 'reason preempts' }, t('job.preempts', p.job, p.class, p.attempt, p.site, p.ran_secs, p.lost_cny.toFixed(2))));
  }
  if (typeof d.spill_choice === 'string') box.append(spillDetail(d.spill_choice, (d.passed_over as PassedOver[] | undefined) ?? [], n));
  const explanation = d.explanation as { chosen?: Candidate; alternatives?: Candidate[]; pruned?: [string, number][] } | undefined;
  if (explanation?.chosen) {
    const candidates = [explanation.chosen, ...(explanation.alternatives ?? [])];
    // Decisions stored before weights were recorded used the defaults.
    const weights = (d.weights as Weights | undefined) ?? { price: 1, energy: 1, carbon_cny_per_t: 500, transfer: 1 };
    box.append(termsChart(candidates, weights, charts));
    const cell = (v: number, digits = 2) => h('td', { class: 'num' }, Number.isFinite(v) ? v.toFixed(digits) : '—');
    box.append(
      tableBox(
        h(
          'table',
          { class: 'candidates' },
          h(
            'thead',
            {},
            h('tr', {}, ...(['cand.site', 'cand.score', 'cand.compute', 'cand.energy', 'cand.carbon', 'cand.transfer', 'cand.wait'] as const).map((k) => h('th', {}, t(k)))),
          ),
          h(
            'tbody',
            {},
            ...candidates.map((c, i) =>
              h(
                'tr',
                { class: i === 0 ? 'chosen' : '' },
                h('td', {}, c.site, i === 0 ? ` ✓ ${t('job.chosen')}` : ''),
                cell(c.score),
                cell(c.compute_cny),
                cell(c.energy_cny),
                cell(c.carbon_kg),
                cell(c.transfer_cny),
                cell(c.wait_h),
              ),
            ),
          ),
        ),
        heading,
      ),
    );
    if (explanation.pruned?.length) {
      box.append(h('p', { class: 'muted' }, 'pruned: ', explanation.pruned.map(([s, b]) => `${s} ≥ ${b.toFixed(1)}`).join(', ')));
    }
  }
  return box;
}
