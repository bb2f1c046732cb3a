// Submit a job: a form over POST /v1/jobs, with templates (training, batch
// inference, HPC) that fill it. One Idempotency-Key per form, so a double click
// or a retry never makes a second job. A refusal names the field (a JSON pointer)
// and is shown beside it. On success the job's page opens and follows it live.

import { ApiError, FieldError, get, post, type JobDoc, type RegionDoc, type SiteDoc } from '../api';
import { failure, h, loading } from '../dom';
import { t } from '../i18n';
import { onAuthError, type Page } from '../session';

interface Template {
  demand: [string, number][];
  duration: string;
  deadline: string;
  data: [number, string] | null;
  command: string;
}

export const TEMPLATES: Record<'training' | 'inference' | 'hpc', Template> = {
  training: {
    demand: [['a800', 8], ['cpu', 64], ['mem_gib', 512]],
    duration: '12h',
    deadline: '48h',
    data: [2048, 'chongqing'],
    command: 'python train.py --epochs 3',
  },
  inference: {
    demand: [['l40s', 2], ['cpu', 16], ['mem_gib', 64]],
    duration: '1h',
    deadline: '6h',
    data: [100, 'chongqing'],
    command: 'python batch_infer.py --shard 0',
  },
  hpc: {
    demand: [['cpu', 256], ['mem_gib', 512]],
    duration: '6h',
    deadline: '24h',
    data: [500, 'chongqing'],
    command: 'mpirun -n 256 ./simulate',
  },
};

function newKey(): string {
  return typeof crypto.randomUUID === 'function'
    ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

export const submitPage: Page = (root) => {
  const body = h('div', {}, loading());
  root.append(h('h1', {}, t('submit.title')), body);
  let stopped = false;

  async function load(): Promise<void> {
    try {
      const [sites, regions] = await Promise.all([get<SiteDoc[]>('/v1/sites'), get<RegionDoc[]>('/v1/regions')]);
      if (!stopped) body.replaceChildren(form(sites, regions));
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

function form(sites: SiteDoc[], regions: RegionDoc[]): HTMLElement {
  const key = newKey();
  const classes = [...new Set(sites.flatMap((s) => Object.keys(s.site.capacity ?? {})))].sort();
  const places = [...regions.map((r) => r.id), ...sites.map((s) => s.id)];
  const option = (value: string, label = value) => h('option', { value }, label);
  const select = (id: string, values: string[], blank: string | null) =>
    h('select', { id, name: id }, ...(blank !== null ? [option('', blank)] : []), ...values.map((v) => option(v)));
  const input = (id: string, attrs: Record<string, string | number | boolean> = {}) => h('input', { id, name: id, ...attrs });
  const errors = new Map<string, HTMLElement>();
  /** A labelled field whose errors (for `pointer`) show beneath it. The control
   * is described by its hint and its error, so a screen reader reads both. */
  const field = (label: Parameters<typeof t>[0], control: HTMLElement, pointer: string, hint?: string) => {
    const error = h('span', { class: 'field-error', 'data-error-for': pointer, role: 'alert', id: `${control.id}-error` });
    const hintText = hint ? h('span', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
    control.setAttribute('aria-describedby', hintText ? `${hintText.id} ${error.id}` : error.id);
    errors.set(pointer, error);
    return h('label', { class: 'field' }, h('span', { class: 'label' }, t(label)), control, hintText, error);
  };

  const demandRows = h('div', { id: 'demand-rows' });
  const demandError = h('span', { class: 'field-error', 'data-error-for': '/demand', role: 'alert', id: 'demand-error' });
  errors.set('/demand', demandError);
  /** Numbers the demand rows as the body will (after one is removed, the rest
   * move up), so that `/demand/1/count` finds the row it names. */
  const reindex = () => {
    for (const key of [...errors.keys()]) if (/^\/demand\/\d/.test(key)) errors.delete(key);
    [...demandRows.children].forEach((row, i) => {
      row.setAttribute('data-demand', String(i));
      const error = row.querySelector('.field-error')!;
      error.id = `demand-${i}-error`;
      for (const [control, name] of [[row.querySelector('select')!, 'class'], [row.querySelector('input')!, 'count']] as const) {
        control.id = `demand-${i}-${name}`;
        control.setAttribute('aria-describedby', `${error.id} demand-error`);
      }
      error.setAttribute('data-error-for', `/demand/${i}`);
      errors.set(`/demand/${i}`, error as HTMLElement);
    });
  };
  const addDemand = (cls = 'cpu', count = 1) => {
    const classSelect = select('demand-class', classes, null);
    classSelect.setAttribute('aria-label', t('submit.class'));
    classSelect.value = cls;
    const countInput = input('demand-count', { type: 'number', min: 1, value: count, 'aria-label': t('submit.count') });
    const error = h('span', { class: 'field-error', role: 'alert' });
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'link',
        'aria-label': t('submit.removeDemand'),
        onclick: () => {
          row.remove();
          reindex();
        },
      },
      '✕',
    );
    const row = h('div', { class: 'demand-row' }, classSelect, countInput, remove, error);
    demandRows.append(row);
    reindex();
  };

  const duration = input('duration', { value: '1h', required: true });
  const deadline = input('deadline', { placeholder: '24h' });
  const origin = select('origin', regions.map((r) => r.id), t('submit.default'));
  const dataSize = input('data-size', { type: 'number', min: 0, step: 'any', placeholder: 'GiB' });
  const dataLocation = select('data-location', places, '—');
  const latencyRegion = select('latency-region', regions.map((r) => r.id), '—');
  const latencyMs = input('latency-ms', { type: 'number', min: 1, placeholder: 'ms' });
  const residency = input('residency', { value: 'cn-mainland' });
  const priority = input('priority', { type: 'number', value: 0 });
  const delayable = input('delayable', { type: 'checkbox', checked: true });
  const restartable = input('restartable', { type: 'checkbox', checked: true });
  const pin = select('site', sites.map((s) => s.id), t('submit.anySite'));
  const command = input('command', { placeholder: 'python train.py' });
  const message = h('p', { class: 'message', id: 'submit-message', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'submit-job' }, t('submit.submit'));

  const fill = (tpl: Template) => {
    demandRows.replaceChildren();
    for (const [c, n] of tpl.demand) addDemand(c, n);
    duration.value = tpl.duration;
    deadline.value = tpl.deadline;
    origin.value = tpl.data?.[1] && regions.some((r) => r.id === tpl.data![1]) ? tpl.data[1] : '';
    dataSize.value = tpl.data ? String(tpl.data[0]) : '';
    dataLocation.value = tpl.data?.[1] ?? '';
    command.value = tpl.command;
  };
  const templates = h(
    'div',
    { class: 'templates', role: 'group', 'aria-label': t('submit.templates') },
    h('span', { class: 'label' }, t('submit.templates')),
    ...(Object.keys(TEMPLATES) as (keyof typeof TEMPLATES)[]).map((name) =>
      h('button', { type: 'button', 'data-template': name, onclick: () => fill(TEMPLATES[name]) }, t(`submit.tpl.${name}`)),
    ),
  );
  fill(TEMPLATES.inference);

  const el = h(
    'form',
    { class: 'card submit-form', id: 'submit-form', novalidate: true },
    templates,
    h(
      'fieldset',
      {},
      h('legend', {}, t('submit.demand')),
      demandRows,
      h('button', { type: 'button', class: 'link', id: 'add-demand', onclick: () => addDemand() }, t('submit.addDemand')),
      demandError,
    ),
    h(
      'div',
      { class: 'form-grid' },
      field('submit.duration', duration, '/duration', t('submit.durationHint')),
      field('submit.deadline', deadline, '/deadline', t('submit.deadlineHint')),
      field('submit.origin', origin, '/origin'),
      field('submit.site', pin, '/site'),
      field('submit.dataSize', dataSize, '/data/size_gib'),
      field('submit.dataLocation', dataLocation, '/data/location'),
      field('submit.latencyRegion', latencyRegion, '/latency_target/region'),
      field('submit.latencyMs', latencyMs, '/latency_target/max_ms'),
      field('submit.residency', residency, '/residency', t('submit.residencyHint')),
      field('submit.priority', priority, '/priority'),
      h('label', { class: 'field check' }, delayable, ' ', t('submit.delayable')),
      h('label', { class: 'field check' }, restartable, ' ', t('submit.restartable')),
    ),
    field('submit.command', command, '/command', t('submit.commandHint')),
    h('div', { class: 'actions' }, submit),
    message,
  );

  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const err of errors.values()) err.textContent = '';
    for (const control of el.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
    message.textContent = '';
    const demand = [...demandRows.querySelectorAll('.demand-row')].map((row) => ({
      class: (row.querySelector('select') as HTMLSelectElement).value,
      count: Number((row.querySelector('input') as HTMLInputElement).value),
    }));
    const job: Record<string, unknown> = {
      demand,
      duration: duration.value.trim(),
      residency: residency.value.split(',').map((s) => s.trim()).filter(Boolean),
      priority: Number(priority.value) || 0,
      delayable: delayable.checked,
      restartable: restartable.checked,
    };
    if (deadline.value.trim()) job.deadline = deadline.value.trim();
    if (origin.value) job.origin = origin.value;
    if (pin.value) job.site = pin.value;
    if (dataSize.value.trim() || dataLocation.value) job.data = { size_gib: Number(dataSize.value), location: dataLocation.value };
    if (latencyRegion.value || latencyMs.value.trim()) job.latency_target = { region: latencyRegion.value, max_ms: Number(latencyMs.value) };
    if (command.value.trim()) job.command = ['sh', '-c', command.value.trim()];
    submit.disabled = true;
    message.textContent = t('submit.sending');
    try {
      const doc = await post<JobDoc>('/v1/jobs', job, { 'idempotency-key': key });
      location.hash = `#/job/${doc.id}`;
    } catch (err) {
      if (onAuthError(err)) return;
      const pointer = err instanceof FieldError ? err.field : null;
      // The nearest field shown: /demand/0/count, then /demand/0, then /demand.
      let target: HTMLElement | undefined;
      for (let p = pointer; p && !target; p = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '') target = errors.get(p);
      if (target) {
        target.textContent = (err as Error).message;
        // The controls it describes are the ones in error.
        for (const control of el.querySelectorAll(`[aria-describedby~="${target.id}"]`)) control.setAttribute('aria-invalid', 'true');
      }
      message.textContent =
        err instanceof ApiError && err.status === 403 ? t('submit.tenantOnly') : t('submit.refused', (err as Error).message);
      message.setAttribute('data-field', pointer ?? '');
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}
