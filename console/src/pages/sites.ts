// The sites table: static description from /v1/sites beside what the network is
// doing now (the live stream's `overview`; polled only while the stream is down).

import { get, type Overview, type SiteDoc } from '../api';
import { classes, empty, failure, h, loading } from '../dom';
import { t } from '../i18n';
import { liveState, subscribe } from '../live';
import { onAuthError, type Page } from '../session';
import { siteName } from './map';

/** The status key of a site: drained, reachable, unreachable or no agent yet. */
export function reachKey(drained: unknown, reachable: boolean | null | undefined) {
  return drained ? 'status.drained' : reachable === true ? 'status.ok' : reachable === false ? 'status.down' : 'status.none';
}

export const sitesPage: Page = (root) => {
  const body = h('div', {}, loading());
  root.append(h('h1', {}, t('sites.title')), body);
  let stopped = false;
  let timer: number | undefined;
  let frame: number | undefined;
  let sites: SiteDoc[] = [];
  let overview: Overview | null = null;

  function render(): void {
    if (!overview) return;
    const now = new Map(overview.sites.map((s) => [s.site, s]));
    if (!sites.length) {
      body.replaceChildren(empty());
      return;
    }
    const head = ['col.site', 'col.name', 'col.capacity', 'col.busy', 'col.running', 'col.queued', 'col.power', 'col.carbon', 'col.green', 'col.tariff', 'col.status'] as const;
    body.replaceChildren(
      h(
        'table',
        { id: 'sites-table' },
        h('thead', {}, h('tr', {}, ...head.map((k) => h('th', {}, t(k))))),
        h(
          'tbody',
          {},
          ...sites.map((doc) => {
            const s = now.get(doc.id);
            const reach = reachKey(doc.drained, s?.reachable ?? doc.reachable);
            return h(
              'tr',
              { 'data-site': doc.id },
              h('td', {}, h('a', { href: `#/site/${encodeURIComponent(doc.id)}` }, h('code', {}, doc.id))),
              h('td', {}, siteName(doc, doc.id)),
              h('td', {}, classes(s?.capacity)),
              h('td', {}, classes(s?.busy)),
              h('td', { class: 'num' }, s?.running ?? '—'),
              h('td', { class: 'num' }, s?.queued ?? '—'),
              h('td', { class: 'num' }, s ? s.power_kw.toFixed(1) : '—'),
              h('td', { class: 'num' }, s ? s.grid_kg_per_kwh.toFixed(3) : '—'),
              h('td', { class: 'num' }, s ? `${(s.green_share * 100).toFixed(0)}%` : '—'),
              h('td', { class: 'num' }, s ? s.tariff_cny_per_kwh.toFixed(3) : '—'),
              h('td', { class: `status ${reach.slice(7)}` }, t(reach)),
            );
          }),
        ),
      ),
    );
  }

  async function load(): Promise<void> {
    window.clearTimeout(timer);
    try {
      [sites, overview] = await Promise.all([get<SiteDoc[]>('/v1/sites'), get<Overview>('/v1/overview')]);
      if (stopped) return;
      render();
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      body.replaceChildren(failure((e as Error).message, load));
      return;
    }
    if (!stopped && liveState() !== 'live') timer = window.setTimeout(load, 5000);
  }

  const unsubscribe = [
    subscribe('overview', (data) => {
      overview = data as Overview;
      if (overview.sites.length !== sites.length) load();
      else if (frame === undefined)
        frame = requestAnimationFrame(() => {
          frame = undefined;
          render();
        });
    }),
    subscribe('resync', () => load()),
  ];
  load();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    if (frame !== undefined) cancelAnimationFrame(frame);
    for (const f of unsubscribe) f();
  };
};
