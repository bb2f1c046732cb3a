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
import { get, type Flows, type LinkDoc, type Overview, type RegionDoc, type SiteDoc, type SiteNow } from '../api';
import { subscribe, whileDown } from '../live';
import { classes, failure, h, loading, units } from '../dom';
import { lang, t } from '../i18n';
import { onAuthError, type Page } from '../session';

echarts.use([ScatterChart, LinesChart, GeoComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);
// Registered as `china` so that ECharts adds the 南海诸岛 inset and 钓鱼岛 to it.
echarts.registerMap('china', networkMap as Parameters<typeof echarts.registerMap>[1]);

/** Polling period while the live stream is down. */
const REFRESH_MS = 5000;
/** Flows drawn with a moving effect (the busiest); the rest are still lines. */
const ANIMATED_FLOWS = 40;
type Metric = 'carbon' | 'green';
let metric: Metric = localStorage.getItem('suanwang.metric') === 'green' ? 'green' : 'carbon';

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
  root.append(
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
  let frame: number | undefined;
  let stopped = false;
  let firstFull = false;
  chart.on('click', (p: { seriesIndex?: number; data?: unknown }) => {
    const id = (p.data as { siteId?: string } | undefined)?.siteId;
    if (p.seriesIndex === 0 && id) location.hash = `#/site/${encodeURIComponent(id)}`;
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
        drawn.push(String(data.getRawDataItem(i).siteId));
      }
    }
    chartBox.setAttribute('data-rendered-sites', drawn.sort().join(','));
    if (!firstFull && sites.length > 0 && drawn.length === sites.length) {
      firstFull = true;
      chartBox.setAttribute('data-first-render-ms', performance.now().toFixed(0));
    }
  };

  /** Redraws at the next animation frame, once however many updates came. */
  function schedule(): void {
    if (frame !== undefined || stopped) return;
    frame = requestAnimationFrame(() => {
      frame = undefined;
      draw();
    });
  }

  function draw(): void {
    if (!overview) return;
    const byId = new Map(sites.map((s) => [s.id, s]));
    const where = new Map<string, [number, number]>();
    for (const s of sites) where.set(s.id, [s.site.location.lon, s.site.location.lat]);
    for (const r of regions) where.set(r.id, [r.location.lon, r.location.lat]);
    const drawnFlows = (flows?.flows ?? []).filter((f) => where.has(f.from) && where.has(f.to));
    const busiest = [...drawnFlows].sort((a, b) => b.jobs + b.data_gib / 1000 - (a.jobs + a.data_gib / 1000)).slice(0, ANIMATED_FLOWS);
    const animated = new Set(busiest);
    const maxJobs = Math.max(1, ...drawnFlows.map((f) => f.jobs));
    const flowLine = (f: (typeof drawnFlows)[number], kind: 'jobs' | 'data') => ({
      coords: [where.get(f.from)!, where.get(f.to)!],
      flow: f,
      kind,
      lineStyle:
        kind === 'jobs'
          ? { width: 1 + 4 * Math.sqrt(f.jobs / maxJobs), color: '#2b6cb0', opacity: 0.55, curveness: 0.2 }
          : { width: 1 + Math.min(4, Math.log10(1 + f.data_gib) / 1.2), color: '#b7791f', opacity: 0.45, type: 'dashed', curveness: -0.2 },
    });
    const jobLines = drawnFlows.filter((f) => f.jobs > 0).map((f) => flowLine(f, 'jobs'));
    const dataLines = drawnFlows.filter((f) => f.data_gib > 0).map((f) => flowLine(f, 'data'));
    chartBox.setAttribute('data-rendered-flows', String(jobLines.length + dataLines.length));
    const now = new Map(overview.sites.map((s) => [s.site, s]));
    const maxCapacity = Math.max(1, ...sites.map((s) => units(now.get(s.id)?.capacity)));
    const value = (s: SiteNow | undefined) =>
      s ? (metric === 'carbon' ? s.grid_kg_per_kwh : s.green_share) : 0;
    const lineTooltip = (d: { flow?: { from: string; to: string; jobs: number; running: number; data_gib: number }; link?: LinkDoc }) => {
      const esc = (v: string) => v.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
      if (d.link) return `${esc(d.link.name ?? `${d.link.a} – ${d.link.b}`)}${d.link.bandwidth_gbps ? ` · ${d.link.bandwidth_gbps} Gb/s` : ''}`;
      const f = d.flow!;
      return `${esc(f.from)} → ${esc(f.to)}<br>${esc(t('map.flowTip', f.jobs, f.running, f.data_gib.toFixed(0)))}`;
    };
    chart.setOption({
      tooltip: {
        trigger: 'item',
        formatter: (p: { seriesIndex: number; data: { siteId?: string; regionId?: string } }) => {
          if (p.seriesIndex === 0) return tooltip(byId.get(p.data.siteId!), now.get(p.data.siteId!), p.data.siteId!);
          if (p.seriesIndex === 1) return String((p.data as { name?: string }).name ?? '');
          return lineTooltip(p.data as Parameters<typeof lineTooltip>[0]);
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
          animation: false,
          data: sites.map((doc) => {
            const s = now.get(doc.id);
            const capacity = units(s?.capacity);
            return {
              siteId: doc.id,
              name: siteName(doc, doc.id),
              value: [doc.site.location.lon, doc.site.location.lat, value(s), capacity],
              symbolSize: 10 + 30 * Math.sqrt(capacity / maxCapacity),
              itemStyle: {
                borderColor: s?.reachable === false || (s?.drained ?? doc.drained) ? '#555' : '#fff',
                borderWidth: 1.5,
                borderType: s?.reachable === false ? 'dashed' : 'solid',
                opacity: 0.9,
              },
            };
          }),
          label: {
            show: true,
            position: 'right',
            formatter: '{b}',
            fontSize: 11,
            color: '#223',
          },
          labelLayout: { hideOverlap: true },
          cursor: 'pointer',
          zlevel: 3,
        },
        {
          type: 'scatter',
          coordinateSystem: 'geo',
          geoIndex: 0,
          animation: false,
          symbol: 'diamond',
          symbolSize: 9,
          itemStyle: { color: '#6b46c1', opacity: 0.8 },
          data: regions.map((r) => ({ regionId: r.id, name: regionName(r), value: [r.location.lon, r.location.lat] })),
          label: { show: sites.length < 60, position: 'left', formatter: '{b}', fontSize: 10, color: '#553c9a' },
          zlevel: 3,
        },
        {
          type: 'lines',
          coordinateSystem: 'geo',
          geoIndex: 0,
          animation: false,
          silent: false,
          data: links
            .filter((l) => where.has(l.a) && where.has(l.b))
            .map((l) => ({ coords: [where.get(l.a)!, where.get(l.b)!], link: l })),
          lineStyle: { color: '#718096', width: 1.2, opacity: 0.5, type: 'solid' },
          zlevel: 1,
        },
        {
          type: 'lines',
          coordinateSystem: 'geo',
          geoIndex: 0,
          animation: false,
          data: [...jobLines, ...dataLines].filter((l) => !animated.has(l.flow)),
          zlevel: 1,
        },
        {
          type: 'lines',
          coordinateSystem: 'geo',
          geoIndex: 0,
          animation: false,
          effect: { show: true, period: 4, trailLength: 0.2, symbol: 'arrow', symbolSize: 6 },
          data: [...jobLines, ...dataLines].filter((l) => animated.has(l.flow)),
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
    if (s.reachable === false) lines.push(esc(t('map.unreachable')));
    if (s.drained) lines.push(esc(t('status.drained')));
  }
  return lines.join('<br>');
}
