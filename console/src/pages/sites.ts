// The sites table: static description from /v1/sites beside what the network is
// doing now (the live stream's `overview`; polled only while the stream is down).
// Rows are built once; an update rewrites only the cells whose text changed, at
// most once per animation frame, so a network of hundreds of sites stays cheap.

import { get, type Overview, type SiteDoc, type SiteNow } from '../api';
import { empty, failure, h, loading, tableBox } from '../dom';
import { t } from '../i18n';
import { subscribe, whileDown } from '../live';
import { onAuthError, type Page } from '../session';
import { siteName } from './map';

/** The status key of a site: drained, reachable, unreachable or no agent yet. */
export function reachKey(drained: unknown, reachable: boolean | null | undefined) {
  return drained ? 'status.drained' : reachable === true ? 'status.ok' : reachable === false ? 'status.down' : 'status.none';
}

const HEAD = ['col.site', 'col.name', 'col.use', 'col.measured', 'col.running', 'col.queued', 'col.power', 'col.carbon', 'col.green', 'col.tariff', 'col.status'] as const;

/** Units of class `k` the scheduler plans with: the planned figure, else the declared one. */
export function plannedUnits(s: SiteNow, k: string, declared: number): number {
  return s.capacity_status === 'unmeasured' || !s.planned ? declared : (s.planned[k] ?? 0);
}

/** Busy of planned capacity per class: `a800 24/128, cpu 1/2 (1536 declared)`. */
function use(s: SiteNow | undefined): string {
  const entries = Object.entries(s?.capacity ?? {});
  if (!s || !entries.length) return '—';
  return entries
    .map(([k, cap]) => {
      const plan = plannedUnits(s, k, cap);
      const tail = plan < cap ? ` (${t('cap.declared', cap)})` : '';
      return `${k}\u00a0${s.busy[k] ?? 0}/${plan}${tail}`;
    })
    .join(', ');
}

/** How measured capacity compares with declared, in words, and its cell's class. */
export function capacityWords(s: SiteNow | undefined): { text: string; flagged: boolean } {
  const status = s?.capacity_status ?? 'unmeasured';
  return { text: t(`cap.${status}`), flagged: status === 'below-declared' };
}

/** The cells after the first two (id and name), as text, and the status class. */
function figures(doc: SiteDoc, s: SiteNow | undefined): { cells: string[]; status: string; flagged: boolean } {
  const reach = reachKey(s?.drained ?? doc.drained, s?.reachable ?? doc.reachable);
  return {
    cells: [
      use(s),
      capacityWords(s).text,
      s ? String(s.running) : '—',
      s ? String(s.queued) : '—',
      s ? s.power_kw.toFixed(1) : '—',
      s ? s.grid_kg_per_kwh.toFixed(3) : '—',
      s ? `${(s.green_share * 100).toFixed(0)}%` : '—',
      s ? s.tariff_cny_per_kwh.toFixed(3) : '—',
      t(reach),
    ],
    status: `status ${reach.slice(7)}`,
    flagged: capacityWords(s).flagged,
  };
}

export const sitesPage: Page = (root) => {
  const body = h('div', {}, loading());
  root.append(h('h1', {}, t('sites.title')), body);
  let stopped = false;
  let frame: number | undefined;
  let sites: SiteDoc[] = [];
  let overview: Overview | null = null;
  /** The figure cells of each site's row, in HEAD order from the third. */
  let cells = new Map<string, HTMLTableCellElement[]>();

  function build(): void {
    if (!sites.length) {
      body.replaceChildren(empty());
      cells = new Map();
      return;
    }
    cells = new Map();
    const numeric = new Set([2, 3, 4, 5, 6, 7]);
    const table = h(
      'table',
      { id: 'sites-table' },
      h('thead', {}, h('tr', {}, ...HEAD.map((k) => h('th', {}, t(k))))),
      h(
        'tbody',
        {},
        ...sites.map((doc) => {
          const row = HEAD.slice(2).map((_, i) => h('td', { class: numeric.has(i) ? 'num' : i === 0 ? 'wrap' : '' }));
          cells.set(doc.id, row);
          return h(
            'tr',
            { 'data-site': doc.id },
            h('td', {}, h('a', { href: `#/site/${encodeURIComponent(doc.id)}` }, h('code', {}, doc.id))),
            h('td', {}, siteName(doc, doc.id)),
            ...row,
          );
        }),
      ),
    );
    body.replaceChildren(tableBox(table, t('sites.title')));
    update();
  }

  /** Rewrites the cells whose text changed. */
  function update(): void {
    if (!overview) return;
    const now = new Map(overview.sites.map((s) => [s.site, s]));
    for (const doc of sites) {
      const row = cells.get(doc.id);
      if (!row) continue;
      const { cells: text, status, flagged } = figures(doc, now.get(doc.id));
      text.forEach((value, i) => {
        if (row[i].textContent !== value) row[i].textContent = value;
      });
      // Measured below declared is flagged in colour and in words.
      const measured = flagged ? 'status down' : '';
      if (row[1].className !== measured) row[1].className = measured;
      const last = row[row.length - 1];
      if (last.className !== status) last.className = status;
    }
  }

  let inFlight = false;
  async function load(): Promise<void> {
    if (inFlight) return;
    inFlight = true;
    try {
      const [docs, now] = await Promise.all([get<SiteDoc[]>('/v1/sites'), get<Overview>('/v1/overview')]);
      if (stopped) return;
      sites = docs;
      overview = now;
      build();
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      body.replaceChildren(failure((e as Error).message, load));
    } finally {
      inFlight = false;
    }
  }

  const unsubscribe = [
    subscribe('overview', (data) => {
      overview = data as Overview;
      // A site added or removed by an operator: fetch the descriptions again.
      if (overview.sites.length !== sites.length) load();
      else if (frame === undefined)
        frame = requestAnimationFrame(() => {
          frame = undefined;
          update();
        });
    }),
    // No `resync`: the overview comes whole, on connect and on change.
    whileDown(load),
  ];
  load();
  return () => {
    stopped = true;
    if (frame !== undefined) cancelAnimationFrame(frame);
    for (const f of unsubscribe) f();
  };
};
