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

// The wire types, generated from the server's OpenAPI document (openapi.json, as
// `suanwang openapi` prints it) into generated/api-types.ts at build time: never written
// by hand here.
import type { components } from '../generated/api-types';

type Schemas = components['schemas'];

export type Location = Schemas['GeoPoint'];
export type SiteDoc = Schemas['SiteDoc'];
export type SiteNow = Schemas['SiteOverview'];
export type Overview = Schemas['Overview'];
export type JobDoc = Schemas['JobDoc'];
export type JobSubmission = Schemas['JobSubmission'];
export type JobPage = Schemas['JobPage'];
export type Explanation = Schemas['JobExplanation'];
export type WaitDoc = Schemas['WaitDoc'];
export type PassedOver = Schemas['PassedOverDoc'];
export type Decision = Schemas['DecisionDoc'];
export type CandidateView = Schemas['CandidateView'];
export type Logs = Schemas['Logs'];
export type RegionDoc = Schemas['Region'];
export type LinkDoc = Schemas['Link'];
export type Flow = Schemas['Flow'];
export type Flows = Schemas['Flows'];
export type SeriesPoint = Schemas['SeriesPoint'];
export type SeriesDoc = Schemas['SeriesDoc'];
export type TelemetryDoc = Schemas['TelemetryDoc'];
export type Telemetry = Schemas['Telemetry'];
export type Totals = Schemas['Totals'];
export type Comparison = Schemas['Comparison'];
export type SavingsDoc = Schemas['SavingsDoc'];
export type JobsEvent = Schemas['JobsEvent'];
export type ErrorBody = Schemas['ErrorBody'];
