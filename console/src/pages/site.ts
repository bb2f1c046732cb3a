// One site: what it offers and what is busy now (per resource class), its power,
// price and carbon now; price and carbon intensity over the last and next 24 h
// (past = actual, future = what the scheduler plans with); what its agents report
// (utilisation and measured power) over the last hours; its queued and running
// jobs. Current figures follow the live stream's `overview`, the job lists its
// `jobs` events; the series and reports are fetched again every half minute.

import * as echarts from 'echarts/core';
import { BarChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkLineComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { ApiError, get, type JobDoc, type JobPage, type Overview, type SeriesDoc, type SiteDoc, type SiteNow, type TelemetryDoc } from '../api';
import { describeChart, failure, h, loading, tableBox, time } from '../dom';
import { stateName, t } from '../i18n';
import { subscribe, whileDown } from '../live';
import { onAuthError, type Page } from '../session';
import { siteName } from './map';
import { reachKey } from './sites';

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, CanvasRenderer]);

/** An axis label: the date at midnight, else the time of day. */
const clock = (unix: number) => {
  const d = new Date(unix * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return d.getHours() === 0 && d.getMinutes() === 0 ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())}` : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

/** The power the site's agents measured, from each agent's latest sample that
 * reports it (kW, with its source), or why there is none. */
function reportedPower(telemetry: TelemetryDoc | null): string {
  if (!telemetry?.samples.length) return '—';
  const latest = new Map<string, Record<string, unknown>>();
  for (const s of [...telemetry.samples].sort((a, b) => a.at - b.at)) latest.set(s.agent, s.sample);
  let watts = 0;
  const sources = new Set<string>();
  for (const sample of latest.values()) {
    const power = sample.power as { watts?: unknown; source?: unknown } | undefined;
    if (typeof power?.watts !== 'number') continue;
    watts += power.watts;
    sources.add(String(power.source ?? '?'));
  }
  if (!sources.size) {
    const kinds = new Set([...latest.values()].map((s) => String(s.source ?? '?')));
    return t('site.powerNone', [...kinds].join(', '));
  }
  return `${(watts / 1000).toFixed(1)} kW (${[...sources].join(', ')})`;
}

export const sitePage: Page = (root, _params, arg) => {
  const id = decodeURIComponent(arg ?? '');
  const title = h('h1', {}, id);
  const body = h('div', {}, loading());
  root.append(h('p', {}, h('a', { href: '#/sites' }, t('site.back'))), title, body);
  let stopped = false;
  const charts: echarts.ECharts[] = [];
  let useChart: echarts.ECharts | null = null;
  let nowBox: HTMLElement | null = null;
  let doc: SiteDoc | null = null;
  let telemetryNow: TelemetryDoc | null = null;
  let powerNow: number | null = null;

  function chartIn(box: HTMLElement): echarts.ECharts {
    const chart = echarts.init(box, undefined, { renderer: 'canvas' });
    charts.push(chart);
    return chart;
  }

  /** Capacity and use per class, and the figures now. */
  function showNow(s: SiteNow | undefined): void {
    if (!s || !nowBox || !useChart) return;
    powerNow = s.power_kw;
    const reach = reachKey(s.drained ?? doc?.drained, s.reachable);
    const row = (key: Parameters<typeof t>[0], value: string | number) => [h('dt', {}, t(key)), h('dd', {}, String(value))];
    nowBox.replaceChildren(
      h(
        'dl',
        { class: 'fields', id: 'site-now' },
        ...row('col.status', t(reach)),
        ...row('col.running', s.running),
        ...row('col.queued', s.queued),
        ...row('site.powerModel', `${s.power_kw.toFixed(1)} kW`),
        ...row('site.powerReportedNow', reportedPower(telemetryNow)),
        ...row('col.carbon', s.grid_kg_per_kwh.toFixed(3)),
        ...row('col.green', `${(s.green_share * 100).toFixed(0)}%`),
        ...row('col.tariff', s.tariff_cny_per_kwh.toFixed(3)),
        ...row('site.computeRate', `${s.compute_cny_per_hour.toFixed(0)} CNY/h`),
      ),
    );
    const classes = Object.keys(s.capacity);
    describeChart(useChart.getDom(), t('site.useAlt', classes.map((c) => `${c} ${s.busy[c] ?? 0}/${s.capacity[c]}`).join(', ')));
    useChart.setOption({
      animation: false,
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
      legend: { top: 0 },
      grid: { left: 70, right: 16, top: 30, bottom: 24 },
      xAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' } },
      yAxis: { type: 'category', data: classes, inverse: true },
      series: [
        {
          type: 'bar',
          stack: 'use',
          name: t('col.busy'),
          itemStyle: { color: '#2b6cb0' },
          data: classes.map((c) => Number(((100 * (s.busy[c] ?? 0)) / Math.max(1, s.capacity[c])).toFixed(1))),
          label: { show: true, position: 'right', formatter: (p: { dataIndex: number }) => `${s.busy[classes[p.dataIndex]] ?? 0} / ${s.capacity[classes[p.dataIndex]]}`, color: '#223', fontSize: 10 },
        },
        {
          type: 'bar',
          stack: 'use',
          name: t('site.free'),
          itemStyle: { color: '#e2e8f0' },
          data: classes.map((c) => Number((100 - (100 * (s.busy[c] ?? 0)) / Math.max(1, s.capacity[c])).toFixed(1))),
        },
      ],
    });
  }

  function seriesChart(chart: echarts.ECharts, series: SeriesDoc): void {
    const past = series.points.filter((p) => !p.forecast);
    const future = series.points.filter((p) => p.forecast);
    // The forecast line starts at the last actual point so the two join.
    const joined = past.length ? [past[past.length - 1], ...future] : future;
    const pair = (points: typeof past, key: 'carbon_kg_per_kwh' | 'tariff_cny_per_kwh') => points.map((p) => [p.at * 1000, p[key]]);
    // In words: the latest actual figures and the range the forecast spans.
    const now = past[past.length - 1] ?? future[0];
    const range = (key: 'carbon_kg_per_kwh' | 'tariff_cny_per_kwh') => {
      const values = (future.length ? future : series.points).map((p) => p[key]);
      return values.length ? [Math.min(...values).toFixed(3), Math.max(...values).toFixed(3)] : ['—', '—'];
    };
    describeChart(
      chart.getDom(),
      t('site.seriesAlt', now?.carbon_kg_per_kwh.toFixed(3) ?? '—', now?.tariff_cny_per_kwh.toFixed(3) ?? '—', ...range('carbon_kg_per_kwh'), ...range('tariff_cny_per_kwh')),
    );
    chart.setOption({
      animation: false,
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 56, right: 56, top: 64, bottom: 28 },
      xAxis: { type: 'time', axisLabel: { formatter: (v: number) => clock(v / 1000), hideOverlap: true } },
      yAxis: [
        { type: 'value', name: 'kg CO₂/kWh', min: 0 },
        { type: 'value', name: 'CNY/kWh', min: 0 },
      ],
      series: [
        { type: 'line', name: t('site.carbonActual'), showSymbol: false, data: pair(past, 'carbon_kg_per_kwh'), itemStyle: { color: '#2f855a' },
          markLine: { symbol: 'none', silent: true, label: { formatter: t('site.now') }, lineStyle: { color: '#999' }, data: [{ xAxis: series.now * 1000 }] } },
        { type: 'line', name: t('site.carbonForecast'), showSymbol: false, data: pair(joined, 'carbon_kg_per_kwh'), lineStyle: { type: 'dashed' }, itemStyle: { color: '#2f855a' } },
        { type: 'line', name: t('site.tariffActual'), showSymbol: false, step: 'end', yAxisIndex: 1, data: pair(past, 'tariff_cny_per_kwh'), itemStyle: { color: '#c05621' } },
        { type: 'line', name: t('site.tariffForecast'), showSymbol: false, step: 'end', yAxisIndex: 1, data: pair(joined, 'tariff_cny_per_kwh'), lineStyle: { type: 'dashed' }, itemStyle: { color: '#c05621' } },
      ],
    });
  }

  function telemetryChart(chart: echarts.ECharts, telemetry: TelemetryDoc): void {
    const samples = [...telemetry.samples].sort((a, b) => a.at - b.at);
    const classes = new Set<string>();
    for (const s of samples) for (const c of Object.keys((s.sample.utilisation as Record<string, number>) ?? {})) classes.add(c);
    const power = samples
      .map((s) => [s.at * 1000, (s.sample.power as { watts?: number } | undefined)?.watts] as const)
      .filter(([, w]) => typeof w === 'number')
      .map(([at, w]) => [at, Number(((w as number) / 1000).toFixed(3))]);
    // In words: the latest utilisation of each class and the latest power.
    const latest = new Map<string, number>();
    for (const s of samples) for (const [c, u] of Object.entries((s.sample.utilisation as Record<string, number>) ?? {})) if (typeof u === 'number') latest.set(c, u);
    const lastPower = power[power.length - 1];
    describeChart(
      chart.getDom(),
      t(
        'site.telemetryAlt',
        [...[...latest].map(([c, u]) => `${c} ${(100 * u).toFixed(0)}%`), ...(lastPower ? [`${lastPower[1]} kW`] : [])].join(', ') || '—',
      ),
    );
    chart.setOption({
      animation: false,
      tooltip: { trigger: 'axis' },
      legend: { top: 0, type: 'scroll' },
      grid: { left: 56, right: 56, top: 64, bottom: 28 },
      xAxis: { type: 'time', axisLabel: { formatter: (v: number) => clock(v / 1000), hideOverlap: true } },
      yAxis: [
        { type: 'value', name: t('site.utilisation'), min: 0, max: 100, axisLabel: { formatter: '{value}%' } },
        { type: 'value', name: 'kW', min: 0 },
      ],
      series: [
        ...[...classes].map((c) => ({
          type: 'line',
          name: c,
          showSymbol: false,
          data: samples
            .filter((s) => typeof (s.sample.utilisation as Record<string, number> | undefined)?.[c] === 'number')
            .map((s) => [s.at * 1000, Number((100 * (s.sample.utilisation as Record<string, number>)[c]).toFixed(1))]),
        })),
        ...(power.length
          ? [
              {
                type: 'line',
                name: t('site.powerReported'),
                yAxisIndex: 1,
                showSymbol: false,
                data: power,
                lineStyle: { width: 2 },
                // What the scheduler's power model says now, against what was measured.
                markLine:
                  powerNow === null
                    ? undefined
                    : { symbol: 'none', silent: true, lineStyle: { type: 'dashed', color: '#999' }, label: { formatter: `${t('site.powerModelNow')} ${powerNow.toFixed(1)} kW`, position: 'insideEndTop' }, data: [{ yAxis: Number(powerNow.toFixed(2)) }] },
              },
            ]
          : []),
      ],
    });
  }

  /** The jobs in a table, named by `heading`. */
  function jobsTable(jobs: JobDoc[], emptyKey: Parameters<typeof t>[0], heading: HTMLElement): HTMLElement {
    if (!jobs.length) return h('p', { class: 'muted' }, t(emptyKey));
    return tableBox(
      h(
        'table',
        { class: 'compact' },
        h('thead', {}, h('tr', {}, ...(['col.id', 'col.state', 'col.tenant', 'col.start'] as const).map((k) => h('th', {}, t(k))))),
        h(
          'tbody',
          {},
          ...jobs.map((j) =>
            h(
              'tr',
              { 'data-job': j.id },
              h('td', {}, h('a', { href: `#/job/${j.id}` }, `#${j.id}`)),
              h('td', {}, h('span', { class: `pill ${j.state}` }, stateName(j.state))),
              h('td', { class: 'num' }, j.tenant_id),
              h('td', {}, time(j.started_at ?? j.start_at)),
            ),
          ),
        ),
      ),
      heading,
    );
  }

  const enc = encodeURIComponent(id);
  const list = (state: string) => get<JobPage>(`/v1/jobs?site=${enc}&state=${state}&limit=50`).then((p) => p.jobs);
  const jobsBox = h('section', { class: 'card', id: 'site-jobs' });
  /** Jobs shown now, to notice one that leaves (requeued, finished elsewhere). */
  let shown = new Set<number>();
  let seriesChartNow: echarts.ECharts | null = null;
  let telemetryChartNow: echarts.ECharts | null = null;

  /** The queued (Placed) and running (Dispatched, Running) jobs, fetched again. */
  async function showJobs(): Promise<void> {
    const [placed, dispatched, running] = await Promise.all([list('Placed'), list('Dispatched'), list('Running')]);
    if (stopped) return;
    shown = new Set([...placed, ...dispatched, ...running].map((j) => j.id));
    const runningTitle = h('h2', { id: 'site-running' }, t('site.running'), ` (${dispatched.length + running.length}${dispatched.length === 50 || running.length === 50 ? '+' : ''})`);
    const queuedTitle = h('h2', { id: 'site-queued' }, t('site.queued'), ` (${placed.length}${placed.length === 50 ? '+' : ''})`);
    jobsBox.replaceChildren(
      runningTitle,
      jobsTable([...running, ...dispatched], 'site.none', runningTitle),
      queuedTitle,
      jobsTable(placed, 'site.none', queuedTitle),
    );
  }

  /** What moves with the clock rather than with events: the price and carbon
   * series and the agents' reports. Redrawn in the same charts. */
  async function showSeries(): Promise<void> {
    const [series, telemetry] = await Promise.all([
      get<SeriesDoc>(`/v1/sites/${enc}/series?before_h=24&after_h=24`),
      get<TelemetryDoc>(`/v1/sites/${enc}/telemetry?limit=500`),
    ]);
    if (stopped) return;
    telemetryNow = telemetry;
    if (seriesChartNow) seriesChart(seriesChartNow, series);
    if (telemetryChartNow && telemetry.samples.length) telemetryChart(telemetryChartNow, telemetry);
  }

  async function load(): Promise<void> {
    try {
      const [site, overview, series, telemetry] = await Promise.all([
        get<SiteDoc>(`/v1/sites/${enc}`),
        get<Overview>('/v1/overview'),
        get<SeriesDoc>(`/v1/sites/${enc}/series?before_h=24&after_h=24`),
        get<TelemetryDoc>(`/v1/sites/${enc}/telemetry?limit=500`),
        showJobs(),
      ]);
      if (stopped) return;
      doc = site;
      telemetryNow = telemetry;
      title.textContent = `${siteName(site, id)} (${id})`;
      const useBox = h('div', { class: 'chart small', id: 'site-use' });
      const seriesBox = h('div', { class: 'chart', id: 'site-series' });
      const telemetryBox = h('div', { class: 'chart', id: 'site-telemetry' });
      nowBox = h('div', {});
      body.replaceChildren(
        h(
          'div',
          { class: 'site-grid' },
          h('section', { class: 'card' }, h('h2', {}, t('site.now')), nowBox, h('h2', {}, t('site.use')), useBox),
          h(
            'section',
            { class: 'card' },
            h('h2', {}, t('site.series')),
            seriesBox,
            h('p', { class: 'muted', id: 'series-label' }, t('site.seriesNote', series.actual_source, series.forecast_source), ' ', series.carbon_label),
          ),
          h(
            'section',
            { class: 'card' },
            h('h2', {}, t('site.telemetry')),
            telemetry.samples.length ? telemetryBox : h('p', { class: 'muted' }, t('site.noTelemetry')),
            h('p', { class: 'muted' }, t('site.powerNote')),
          ),
          jobsBox,
        ),
      );
      for (const c of charts.splice(0)) c.dispose();
      useChart = chartIn(useBox);
      showNow(overview.sites.find((s) => s.site === id));
      seriesChartNow = chartIn(seriesBox);
      seriesChart(seriesChartNow, series);
      telemetryChartNow = telemetry.samples.length ? chartIn(telemetryBox) : null;
      if (telemetryChartNow) telemetryChart(telemetryChartNow, telemetry);
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      body.replaceChildren(
        e instanceof ApiError && e.status === 404
          ? h('div', { class: 'state empty', 'data-state': 'not-found' }, t('site.notFound', id))
          : failure((e as Error).message, load),
      );
    }
  }

  // Jobs placed here, or shown here and now gone elsewhere: fetch the lists again,
  // once for a burst of events.
  let jobsTimer: number | undefined;
  const unsubscribe = [
    subscribe('overview', (data) => showNow((data as Overview).sites.find((s) => s.site === id))),
    subscribe('jobs', (data) => {
      if (!(data as { jobs: JobDoc[] }).jobs.some((j) => j.site === id || shown.has(j.id))) return;
      window.clearTimeout(jobsTimer);
      jobsTimer = window.setTimeout(() => showJobs().catch(() => undefined), 300);
    }),
    subscribe('resync', () => showJobs().catch(() => undefined)),
    // While the stream is down: the figures now and the jobs, polled.
    whileDown(() => {
      showJobs().catch(() => undefined);
      get<Overview>('/v1/overview')
        .then((o) => !stopped && showNow(o.sites.find((s) => s.site === id)))
        .catch(() => undefined);
    }),
  ];
  const resize = () => charts.forEach((c) => c.resize());
  window.addEventListener('resize', resize);
  load();
  // The series and the agents' reports move with the clock: every half minute.
  const timer = window.setInterval(() => showSeries().catch(() => undefined), 30000);
  return () => {
    stopped = true;
    window.clearInterval(timer);
    window.clearTimeout(jobsTimer);
    window.removeEventListener('resize', resize);
    for (const f of unsubscribe) f();
    for (const c of charts) c.dispose();
  };
};
