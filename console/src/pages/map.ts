// The network map: China (and Singapore) with every site at its coordinates, sized
// by capacity and coloured by grid carbon intensity or green share; demand regions;
// links; and the live flows of jobs and their data along them. Updated from the
// live stream (`overview`, `flows`), redrawn at most once per animation frame;
// polled only while the stream is down. The container exposes what the chart drew
// (data-rendered-sites, data-rendered-flows) and when it first drew every site
// (data-first-render-ms), for tests and benchmarks. A click on a site opens it.

import * as echarts from 'echarts/core';
import { LinesChart, ScatterChart } from 'echarts/charts';
import { GeoComponent, TooltipComponent, VisualMapComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import networkMap from 'virtual:network-map';
import { get, type Flow, type Flows, type LinkDoc, type Overview, type RegionDoc, type SiteDoc, type SiteNow } from '../api';
import { subscribe, whileDown } from '../live';
import { classes, describeChart, failure, h, loading, units } from '../dom';
import { lang, t } from '../i18n';
import { onAuthError, type Page } from '../session';

echarts.use([ScatterChart, LinesChart, GeoComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);
// Registered as `china` so that ECharts adds the 南海诸岛 inset and 钓鱼岛 to it.
echarts.registerMap('china', networkMap as Parameters<typeof echarts.registerMap>[1]);

/** Least time between two redraws from live events, ms. */
const REDRAW_MS = 1000;
/** Polling period while the live stream is down. */
const REFRESH_MS = 5000;
/** Flows drawn with a moving effect (the busiest); the rest are still lines. */
const ANIMATED_FLOWS = 40;
/** Line widths of the flows, by step of jobs (square root) or data (log). */
const WIDTHS = [1, 2, 3.5, 5];
/** Above this many sites, names are shown in tooltips only. */
const LABELLED_SITES = 100;
type Metric = 'carbon' | 'green';
let metric: Metric = localStorage.getItem('suanwang.metric') === 'green' ? 'green' : 'carbon';
/** Whether the busiest flows move. They move for as long as the page is open, so
 * a button pauses them (WCAG 2.2.2); still by default for a user whose system asks
 * for less motion. The choice is kept in localStorage. */
let flowsMove = (localStorage.getItem('suanwang.motion') ?? (matchMedia('(prefers-reduced-motion: reduce)').matches ? 'still' : 'moving')) === 'moving';

export function siteName(doc: SiteDoc | undefined, id: string): string {
  if (!doc) return id;
  return (lang() === 'zh' ? doc.site.name_zh : doc.site.name) ?? doc.site.name ?? id;
}

function regionName(region: RegionDoc): string {
  return (lang() === 'zh' ? region.name_zh : region.name) ?? region.name ?? region.id;
}

export const mapPage: Page = (root) => {
  const chartBox = h('div', { id: 'map', class: 'map', 'data-rendered-sites': '' });
  const totals = h('dl', { class: 'totals' });
  const updated = h('p', { class: 'muted', id: 'map-updated' });
  const status = h('div', { class: 'map-status' }, loading());
  const switcher = h(
    'div',
    { class: 'switch', role: 'radiogroup', 'aria-label': t('map.colour') },
    ...(['carbon', 'green'] as Metric[]).map((m) =>
      h(
        'button',
        {
          'data-metric': m,
          class: m === metric ? 'on' : '',
          role: 'radio',
          'aria-checked': m === metric ? 'true' : 'false',
          onclick: () => {
            metric = m;
            localStorage.setItem('suanwang.metric', m);
            for (const b of switcher.querySelectorAll('button')) {
              const on = b.getAttribute('data-metric') === m;
              b.classList.toggle('on', on);
              b.setAttribute('aria-checked', on ? 'true' : 'false');
            }
            draw();
          },
        },
        t(m === 'carbon' ? 'map.carbon' : 'map.green'),
      ),
    ),
  );
  const motion = h(
    'button',
    {
      type: 'button',
      id: 'motion',
      class: flowsMove ? '' : 'on',
      'aria-pressed': flowsMove ? 'false' : 'true',
      onclick: () => {
        flowsMove = !flowsMove;
        localStorage.setItem('suanwang.motion', flowsMove ? 'moving' : 'still');
        motion.classList.toggle('on', !flowsMove);
        motion.setAttribute('aria-pressed', flowsMove ? 'false' : 'true');
        draw();
      },
    },
    t('map.pause'),
  );
  root.append(
    // The map fills the page: its heading is for screen readers (the header's
    // navigation shows where one is).
    h('h1', { class: 'sr-only' }, t('nav.map')),
    h(
      'div',
      { class: 'map-page' },
      h('section', { class: 'map-wrap' }, chartBox, status),
      h(
        'aside',
        { class: 'card side' },
        h('h2', {}, t('map.colour')),
        switcher,
        h('p', { class: 'muted' }, t('map.size')),
        h('p', { class: 'muted' }, t('map.inset')),
        h('p', { class: 'muted legend-flows' }, h('span', { class: 'swatch jobs' }), ' ', t('map.flowJobs'), h('br'), h('span', { class: 'swatch data' }), ' ', t('map.flowData')),
        h('div', { class: 'switch' }, motion),
        totals,
        updated,
      ),
    ),
  );

  const chart = echarts.init(chartBox, undefined, { renderer: 'canvas' });
  let sites: SiteDoc[] = [];
  let regions: RegionDoc[] = [];
  let links: LinkDoc[] = [];
  let overview: Overview | null = null;
  let flows: Flows | null = null;
  /** The sites as last drawn: the scatter's data index is an index into this. */
  let drawnSites: SiteDoc[] = [];
  let frame: number | undefined;
  let due: number | undefined;
  let drawnAt = -Infinity;
  let drawMs = 0;
  let stopped = false;
  let firstFull = false;
  chart.on('click', (p: { seriesIndex?: number; dataIndex?: number }) => {
    const id = p.seriesIndex === 0 && p.dataIndex !== undefined ? drawnSites[p.dataIndex]?.id : undefined;
    if (id) location.hash = `#/site/${encodeURIComponent(id)}`;
  });

  // Reads back what the scatter series laid out (only sites with a position inside
  // the canvas count as drawn), one frame after a redraw, when it is on screen.
  // (Not on ECharts' 'finished': with moving flows the chart never finishes.)
  const readBack = () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const model = (chart as any).getModel();
    const series = model?.getSeriesByIndex(0);
    if (!series) return;
    const data = series.getData();
    const drawn: string[] = [];
    const [width, height] = [chart.getWidth(), chart.getHeight()];
    for (let i = 0; i < data.count(); i++) {
      const layout = data.getItemLayout(i) as number[] | undefined;
      if (layout && layout[0] >= 0 && layout[1] >= 0 && layout[0] <= width && layout[1] <= height) {
        drawn.push(drawnSites[i].id);
      }
    }
    chartBox.setAttribute('data-rendered-sites', drawn.sort().join(','));
    if (!firstFull && sites.length > 0 && drawn.length === sites.length) {
      firstFull = true;
      chartBox.setAttribute('data-first-render-ms', performance.now().toFixed(0));
    }
  };

  /** Redraws once however many updates came: at the next animation frame, and
   * at least REDRAW_MS after the last redraw (a redraw of a big network takes tens
   * of milliseconds, its moving flows need the frames in between). */
  function schedule(): void {
    if (due !== undefined || frame !== undefined || stopped) return;
    due = window.setTimeout(
      () => {
        due = undefined;
        frame = requestAnimationFrame(() => {
          frame = undefined;
          draw();
        });
      },
      // At least REDRAW_MS apart, and ten redraws' time: redraws take at most
      // about a tenth of the main thread however slow the machine.
      Math.max(0, drawnAt + Math.max(REDRAW_MS, 10 * drawMs) - performance.now()),
    );
  }

  function draw(): void {
    if (!overview) return;
    drawnAt = performance.now();
    drawnSites = sites;
    const byId = new Map(sites.map((s) => [s.id, s]));
    const where = new Map<string, [number, number]>();
    for (const s of sites) where.set(s.id, [s.site.location.lon, s.site.location.lat]);
    for (const r of regions) where.set(r.id, [r.location.lon, r.location.lat]);
    const drawnFlows = (flows?.flows ?? []).filter((f) => where.has(f.from) && where.has(f.to));
    const busiest = [...drawnFlows].sort((a, b) => b.jobs + b.data_gib / 1000 - (a.jobs + a.data_gib / 1000)).slice(0, ANIMATED_FLOWS);
    const animated = new Set(busiest);
    const maxJobs = Math.max(1, ...drawnFlows.map((f) => f.jobs));
    // Widths in a few steps, so that the still lines can be drawn in ECharts'
    // large mode (one path per series, one style per series): thousands of flows
    // then cost one path each redraw, not an element each.
    const jobsStep = (f: Flow) => Math.min(WIDTHS.length - 1, Math.floor(WIDTHS.length * Math.sqrt(f.jobs / maxJobs)));
    const dataStep = (f: Flow) => Math.min(WIDTHS.length - 1, Math.floor(Math.log10(1 + f.data_gib) / 1.2));
    const style = (kind: 'jobs' | 'data', step: number) =>
      kind === 'jobs'
        ? { width: WIDTHS[step], color: '#2b6cb0', opacity: 0.55, curveness: 0.2 }
        : { width: WIDTHS[step], color: '#b7791f', opacity: 0.45, type: 'dashed' as const, curveness: 0.4 };
    const line = (f: Flow, kind: 'jobs' | 'data') => ({ coords: [where.get(f.from)!, where.get(f.to)!], flow: f, kind });
    const jobLines = drawnFlows.filter((f) => f.jobs > 0);
    const dataLines = drawnFlows.filter((f) => f.data_gib > 0);
    // What each line series drew, by series id: in large mode ECharts hands the
    // tooltip an index, not the item.
    const drawnLines = new Map<string, { flow?: Flow; link?: LinkDoc }[]>();
    const remember = <T extends { flow?: Flow; link?: LinkDoc }>(id: string, items: T[]): T[] => {
      drawnLines.set(id, items);
      return items;
    };
    const still = (kind: 'jobs' | 'data', flows: Flow[], step: (f: Flow) => number) =>
      WIDTHS.map((_, i) => ({
        id: `flows-${kind}-${i}`,
        type: 'lines',
        coordinateSystem: 'geo',
        geoIndex: 0,
        tooltip: { show: true },
        animation: false,
        large: true,
        largeThreshold: 1,
        lineStyle: style(kind, i),
        data: remember(`flows-${kind}-${i}`, flows.filter((f) => !animated.has(f) && step(f) === i).map((f) => line(f, kind))),
        zlevel: 1,
      }));
    const moving = remember('flows-moving', [
      ...jobLines.filter((f) => animated.has(f)).map((f) => ({ ...line(f, 'jobs'), lineStyle: style('jobs', jobsStep(f)) })),
      ...dataLines.filter((f) => animated.has(f)).map((f) => ({ ...line(f, 'data'), lineStyle: style('data', dataStep(f)) })),
    ]);
    chartBox.setAttribute('data-rendered-flows', String(jobLines.length + dataLines.length));
    chartBox.setAttribute('data-moving', String(flowsMove));
    describeChart(chartBox, t('map.alt', sites.length, t(metric === 'carbon' ? 'map.carbon' : 'map.green')));
    const now = new Map(overview.sites.map((s) => [s.site, s]));
    const maxCapacity = Math.max(1, ...sites.map((s) => units(now.get(s.id)?.capacity)));
    const value = (s: SiteNow | undefined) =>
      s ? (metric === 'carbon' ? s.grid_kg_per_kwh : s.green_share) : 0;
    const lineTooltip = (d: { flow?: Flow; link?: LinkDoc } | undefined) => {
      const esc = (v: string) => v.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
      if (!d) return '';
      if (d.link) return `${esc(d.link.name ?? `${d.link.a} – ${d.link.b}`)}${d.link.bandwidth_gbps ? ` · ${d.link.bandwidth_gbps} Gb/s` : ''}`;
      const f = d.flow;
      if (!f) return '';
      return `${esc(f.from)} → ${esc(f.to)}<br>${esc(t('map.flowTip', f.jobs, f.running, f.data_gib.toFixed(0)))}`;
    };
    chart.setOption({
      tooltip: {
        trigger: 'item',
        formatter: (p: { seriesIndex: number; seriesId?: string; dataIndex: number; data: unknown }) => {
          if (p.seriesIndex === 0) {
            const id = drawnSites[p.dataIndex]?.id ?? '';
            return tooltip(byId.get(id), now.get(id), id);
          }
          if (p.seriesIndex === 1) return String((p.data as { name?: string }).name ?? '');
          return lineTooltip(drawnLines.get(p.seriesId ?? '')?.[p.dataIndex] ?? (p.data as Parameters<typeof lineTooltip>[0]));
        },
      },
      geo: {
        map: 'china',
        roam: true,
        top: 16,
        bottom: 16,
        itemStyle: { areaColor: '#eef2f6', borderColor: '#9aa9b8', borderWidth: 0.6 },
        emphasis: { disabled: true },
        select: { disabled: true },
        // No tooltip for provinces. The series on this geo say `tooltip.show`
        // themselves: a series item's tooltip inherits its coordinate system's.
        tooltip: { show: false },
      },
      visualMap: {
        type: 'continuous',
        dimension: 2,
        seriesIndex: 0,
        min: 0,
        max: metric === 'carbon' ? 1 : 1,
        calculable: false,
        left: 16,
        bottom: 24,
        text: metric === 'carbon' ? ['1.0 kg/kWh', '0'] : ['100%', '0%'],
        inRange: {
          color:
            metric === 'carbon' ? ['#1a9850', '#fee08b', '#d73027'] : ['#d73027', '#fee08b', '#1a9850'],
        },
      },
      series: [
        {
          type: 'scatter',
          coordinateSystem: 'geo',
          geoIndex: 0,
          tooltip: { show: true },
          animation: false,
          // One plain array per site, in the order of `sites` (the data index is
          // the site's index); a style of its own only for a site that is down or
          // drained. Per-item objects cost ECharts a model each, every redraw.
          data: sites.map((doc) => {
            const s = now.get(doc.id);
            const capacity = units(s?.capacity);
            const point = [doc.site.location.lon, doc.site.location.lat, value(s), capacity];
            if (s?.reachable !== false && !(s?.drained ?? doc.drained)) return point;
            return { value: point, itemStyle: { borderColor: '#555', borderType: s?.reachable === false ? 'dashed' : 'solid' } };
          }),
          symbolSize: (point: number[]) => 10 + 30 * Math.sqrt(point[3] / maxCapacity),
          itemStyle: { borderColor: '#fff', borderWidth: 1.5, opacity: 0.9 },
          // Names beside the circles while they can be read (and laid out cheaply);
          // on a bigger network, in the tooltip only.
          label: {
            show: sites.length <= LABELLED_SITES,
            position: 'right',
            formatter: (p: { dataIndex: number }) => siteName(drawnSites[p.dataIndex], drawnSites[p.dataIndex]?.id ?? ''),
            fontSize: 11,
            color: '#223',
          },
          labelLayout: sites.length <= LABELLED_SITES ? { hideOverlap: true } : undefined,
          cursor: 'pointer',
          zlevel: 3,
        },
        {
          type: 'scatter',
          coordinateSystem: 'geo',
          geoIndex: 0,
          tooltip: { show: true },
          animation: false,
          symbol: 'diamond',
          symbolSize: 9,
          itemStyle: { color: '#6b46c1', opacity: 0.8 },
          data: regions.map((r) => ({ regionId: r.id, name: regionName(r), value: [r.location.lon, r.location.lat] })),
          label: { show: sites.length <= LABELLED_SITES, position: 'left', formatter: '{b}', fontSize: 10, color: '#553c9a' },
          zlevel: 3,
        },
        {
          type: 'lines',
          coordinateSystem: 'geo',
          geoIndex: 0,
          tooltip: { show: true },
          animation: false,
          silent: false,
          id: 'links',
          data: remember(
            'links',
            links.filter((l) => where.has(l.a) && where.has(l.b)).map((l) => ({ coords: [where.get(l.a)!, where.get(l.b)!], link: l })),
          ),
          lineStyle: { color: '#718096', width: 1.2, opacity: 0.5, type: 'solid' },
          zlevel: 1,
        },
        ...still('jobs', jobLines, jobsStep),
        ...still('data', dataLines, dataStep),
        {
          id: 'flows-moving',
          type: 'lines',
          coordinateSystem: 'geo',
          geoIndex: 0,
          tooltip: { show: true },
          animation: false,
          effect: { show: flowsMove, period: 4, trailLength: 0.2, symbol: 'arrow', symbolSize: 6 },
          data: moving,
          // A layer of its own: a trail turns on motion blur for its whole layer,
          // which then repaints every frame; the static lines below do not.
          zlevel: 2,
        },
      ],
    });
    const fmt = (n: number, digits = 0) => n.toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en', { maximumFractionDigits: digits });
    totals.replaceChildren(
      h('dt', {}, t('map.sites')),
      h('dd', { id: 'total-sites' }, sites.length),
      h('dt', {}, t('map.pending')),
      h('dd', {}, overview.pending),
      h('dt', {}, t('map.power')),
      h('dd', {}, `${fmt(overview.power_kw)} kW`),
      h('dt', {}, t('map.carbonRate')),
      h('dd', {}, `${fmt(overview.carbon_kg_per_hour)} kg CO₂/h`),
      h('dt', {}, t('map.cost')),
      h('dd', {}, `${fmt(overview.cost_cny_per_hour)} CNY/h`),
    );
    // How long a redraw took (console/tests/bench.mjs reads these).
    drawMs = performance.measure('map-draw', { start: drawnAt }).duration;
    requestAnimationFrame(readBack);
    updated.textContent = t('map.updated', new Date(overview.at * 1000).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en'));
  }

  /** Fetches everything; then the live stream keeps it current, and this runs
   * again only while the stream is down. */
  async function refresh(): Promise<void> {
    try {
      const [siteDocs, regionDocs, linkDocs, now, flowsNow] = await Promise.all([
        get<SiteDoc[]>('/v1/sites'),
        get<RegionDoc[]>('/v1/regions'),
        get<LinkDoc[]>('/v1/links'),
        get<Overview>('/v1/overview'),
        get<Flows>('/v1/flows'),
      ]);
      if (stopped) return;
      sites = siteDocs;
      regions = regionDocs;
      links = linkDocs;
      overview = now;
      flows = flowsNow;
      status.replaceChildren(sites.length ? '' : h('div', { class: 'state empty', 'data-state': 'empty' }, t('state.empty')));
      draw();
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      status.replaceChildren(failure((e as Error).message, refresh));
    }
  }

  const unsubscribe = [
    subscribe('overview', (data) => {
      overview = data as Overview;
      // A site added by an operator: fetch the descriptions again.
      if (overview.sites.length !== sites.length) refresh();
      else schedule();
    }),
    subscribe('flows', (data) => {
      flows = data as Flows;
      schedule();
    }),
    // No `resync`: overview and flows come whole, on connect and on change; the
    // jobs events the map would have missed are not drawn here.
    whileDown(refresh, REFRESH_MS),
  ];
  const resize = () => chart.resize();
  window.addEventListener('resize', resize);
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(due);
    if (frame !== undefined) cancelAnimationFrame(frame);
    for (const f of unsubscribe) f();
    window.removeEventListener('resize', resize);
    chart.dispose();
  };
};

function tooltip(doc: SiteDoc | undefined, s: SiteNow | undefined, id: string): string {
  // ECharts renders this as HTML: escape the names.
  const esc = (v: string) => v.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const lines = [`<b>${esc(siteName(doc, id))}</b> (${esc(id)})`];
  if (s) {
    lines.push(
      `${esc(t('col.capacity'))}: ${esc(classes(s.capacity))}`,
      `${esc(t('col.busy'))}: ${esc(classes(s.busy))}`,
      `${esc(t('map.running'))}: ${s.running} · ${esc(t('map.queued'))}: ${s.queued}`,
      `${esc(t('map.carbon'))}: ${s.grid_kg_per_kwh.toFixed(3)} kg/kWh`,
      `${esc(t('map.green'))}: ${(s.green_share * 100).toFixed(0)}%`,
    );
    if (s.capacity_status === 'below-declared') lines.push(esc(t('cap.below-declared')));
    if (s.reachable === false) lines.push(esc(t('map.unreachable')));
    if (s.drained) lines.push(esc(t('status.drained')));
  }
  return lines.join('<br>');
}
