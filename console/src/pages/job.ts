// One job: its state and timeline, the scheduler's decisions as text (the
// candidates weighed with their score terms), and the tail of its log.

import { get, type Explanation, type Logs } from '../api';
import { failure, h, loading, time } from '../dom';
import { stateName, t } from '../i18n';
import { onAuthError, type Page } from '../session';

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

  async function load(): Promise<void> {
    try {
      const [explanation, logs] = await Promise.all([
        get<Explanation>(`/v1/jobs/${id}/explain`),
        get<Logs>(`/v1/jobs/${id}/logs`).catch(() => null),
      ]);
      if (stopped) return;
      const job = explanation.job;
      const row = (key: Parameters<typeof t>[0], value: string | number) => [h('dt', {}, t(key)), h('dd', {}, String(value))];
      body.replaceChildren(
        h(
          'div',
          { class: 'job-grid' },
          h(
            'section',
            { class: 'card' },
            h('p', {}, h('span', { class: `pill ${job.state}`, id: 'job-state' }, stateName(job.state))),
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
            h('h2', {}, t('job.spec')),
            h('pre', { class: 'spec' }, JSON.stringify(job.spec, null, 2)),
          ),
          h(
            'section',
            { class: 'card', id: 'explanation' },
            h('h2', {}, t('job.explanation')),
            ...explanation.decisions.map((d, i) => decision(d, i + 1)),
            h('h2', {}, t('job.logs')),
            h('pre', { class: 'logs' }, logs?.tail ? logs.tail : t('job.nologs')),
          ),
        ),
      );
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      body.replaceChildren(failure((e as Error).message, load));
    }
  }

  load();
  return () => {
    stopped = true;
  };
};

function decision(d: Record<string, unknown>, n: number): HTMLElement {
  const outcome = String(d.outcome ?? '?');
  const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  const box = h(
    'div',
    { class: 'decision', 'data-outcome': outcome },
    h('h3', {}, t('job.decision', n), ': ', outcome, d.policy ? ` (${text(d.policy)})` : ''),
  );
  if (d.reason !== undefined) box.append(h('p', { class: 'reason' }, text(d.reason)));
  const explanation = d.explanation as { chosen?: Candidate; alternatives?: Candidate[]; pruned?: [string, number][] } | undefined;
  if (explanation?.chosen) {
    const candidates = [explanation.chosen, ...(explanation.alternatives ?? [])];
    const cell = (v: number, digits = 2) => h('td', { class: 'num' }, Number.isFinite(v) ? v.toFixed(digits) : '—');
    box.append(
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
    );
    if (explanation.pruned?.length) {
      box.append(h('p', { class: 'muted' }, 'pruned: ', explanation.pruned.map(([s, b]) => `${s} ≥ ${b.toFixed(1)}`).join(', ')));
    }
  }
  return box;
}
