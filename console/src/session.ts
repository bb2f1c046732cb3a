// What pages share with the shell: the page type, and sending an expired token
// back to the login page with a notice.

import { ApiError, setToken } from './api';
import { t } from './i18n';

/** A page renders into `root` and returns how to stop (timers, charts). */
export type Page = (root: HTMLElement, params: URLSearchParams, arg?: string) => (() => void) | void;

let notice: string | null = null;

/** Called by pages on any API failure: a 401 signs out, anything else is theirs. */
export function onAuthError(e: unknown): boolean {
  if (e instanceof ApiError && e.status === 401) {
    setToken(null);
    notice = t('login.expired');
    location.hash = '#/login';
    return true;
  }
  return false;
}

export function takeNotice(): string | null {
  const n = notice;
  notice = null;
  return n;
}

