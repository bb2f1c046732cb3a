// The API client: the token from sessionStorage as a bearer token, errors as ApiError.

const TOKEN_KEY = 'suanwang.token';

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** GET `path` with `bearer` (the stored token by default), parsed as JSON. */
export async function get<T>(path: string, bearer: string | null = token()): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
    });
  } catch (e) {
    throw new ApiError(0, `the server did not answer (${(e as Error).message})`);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && typeof body.error === 'string') message = body.error;
      else if (body && typeof body.message === 'string') message = body.message;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(response.status, message);
  }
  return (await response.json()) as T;
}

/** An API error with the JSON pointer (or parameter) it names, if any. */
export class FieldError extends ApiError {
  constructor(
    status: number,
    message: string,
    public field: string | null,
  ) {
    super(status, message);
  }
}

/** POST `body` as JSON to `path`; `headers` are added (e.g. Idempotency-Key). */
export async function post<T>(path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `the server did not answer (${(e as Error).message})`);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let field: string | null = null;
    try {
      const err = await response.json();
      if (typeof err?.message === 'string') message = err.message;
      if (typeof err?.field === 'string') field = err.field;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new FieldError(response.status, message, field);
  }
  return (await response.json()) as T;
}

export interface Location {
  lat: number;
  lon: number;
}

export interface SiteDoc {
  id: string;
  site: {
    name?: string;
    name_zh?: string;
    location: Location;
    capacity?: Record<string, number>;
    [key: string]: unknown;
  };
  drained: boolean;
  reachable: boolean | null;
}

export interface SiteNow {
  site: string;
  capacity: Record<string, number>;
  busy: Record<string, number>;
  queued: number;
  running: number;
  reachable: boolean | null;
  /** Whether an operator drained it (absent from servers before the live stream). */
  drained?: boolean;
  power_kw: number;
  grid_kg_per_kwh: number;
  green_share: number;
  tariff_cny_per_kwh: number;
  compute_cny_per_hour: number;
}

export interface Overview {
  at: number;
  pending: number;
  sites: SiteNow[];
  power_kw: number;
  carbon_kg_per_hour: number;
  cost_cny_per_hour: number;
}

export interface JobDoc {
  id: number;
  tenant_id: number;
  state: string;
  site: string | null;
  start_at: number | null;
  exit_code: number | null;
  spec: unknown;
  created_at: number;
  updated_at: number;
  attempt: number;
  agent: string | null;
  started_at: number | null;
  finished_at: number | null;
}

export interface JobPage {
  jobs: JobDoc[];
  next: number | null;
}

export interface Explanation {
  job: JobDoc;
  decisions: Record<string, unknown>[];
}

export interface Logs {
  tail: string;
  complete: boolean;
}

export interface RegionDoc {
  id: string;
  name: string;
  name_zh?: string | null;
  location: Location;
  jurisdiction: string;
}

export interface LinkDoc {
  a: string;
  b: string;
  name?: string | null;
  bandwidth_gbps?: number | null;
}

export interface Flow {
  from: string;
  to: string;
  jobs: number;
  running: number;
  data_gib: number;
}

export interface Flows {
  at: number;
  flows: Flow[];
}

export interface SeriesPoint {
  at: number;
  carbon_kg_per_kwh: number;
  green_share: number;
  tariff_cny_per_kwh: number;
  forecast: boolean;
}

export interface SeriesDoc {
  site: string;
  now: number;
  slot_secs: number;
  carbon_label: string;
  actual_source: string;
  forecast_source: string;
  points: SeriesPoint[];
}

export interface TelemetryDoc {
  site: string;
  reachable: boolean | null;
  samples: { agent: string; at: number; sample: Record<string, unknown> }[];
}

export interface Totals {
  cost_cny: number;
  compute_cny: number;
  energy_cny: number;
  transfer_cny: number;
  carbon_kg: number;
  energy_kwh: number;
}

export interface Comparison {
  tenant_id?: number;
  tenant?: string;
  jobs: number;
  excluded: number;
  actual: Totals;
  local_fifo: Totals;
  saved_cny: number;
  saved_kg: number;
}

export interface SavingsDoc {
  from: number;
  to: number;
  label: string;
  network: Comparison | null;
  tenants: Comparison[];
}
