// Browser session id: synchronous, persisted in localStorage (shared by tabs), rotated after
// inactivity or a maximum age. Synchronous on purpose: web-common's SessionManager.start() is async
// and hands out a different id to anything emitted before it resolves (observed in the e2e test).

const KEY = 'agentpress-otel.session';
const WRITE_EVERY_MS = 5_000; // bound localStorage writes; activity is tracked to this precision

function randomId() {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class SessionProvider {
  /**
   * @param {{storage?: Storage|null, maxDurationMs?: number, inactivityMs?: number, now?: () => number, newId?: () => string}} [opts]
   */
  constructor({ storage, maxDurationMs = 4 * 3600_000, inactivityMs = 30 * 60_000, now = Date.now, newId = randomId } = {}) {
    this.storage = storage ?? null;
    this.maxDurationMs = maxDurationMs;
    this.inactivityMs = inactivityMs;
    this.now = now;
    this.newId = newId;
    this.current = null;
  }

  read() {
    try {
      const s = JSON.parse(this.storage?.getItem(KEY) ?? 'null');
      return s && typeof s.id === 'string' ? s : null;
    } catch {
      return null;
    }
  }

  write(s) {
    try {
      this.storage?.setItem(KEY, JSON.stringify(s));
    } catch {
      // Storage full or blocked (private mode): the id still lives in memory for this page.
    }
  }

  /** The current session id; every call counts as activity. */
  getSessionId() {
    const t = this.now();
    let s = this.current;
    // Another tab may have rotated or refreshed the session: prefer the stored one when it is newer.
    if (!s || t - s.last >= WRITE_EVERY_MS) {
      const stored = this.read();
      if (stored && (!s || stored.last >= s.last)) s = stored;
    }
    if (!s || t - s.start > this.maxDurationMs || t - s.last > this.inactivityMs) {
      s = { id: this.newId(), start: t, last: t };
      this.write(s);
    } else if (t - s.last >= WRITE_EVERY_MS) {
      s = { ...s, last: t };
      this.write(s);
    }
    this.current = s;
    return s.id;
  }

  /** Start a new session now (e.g. on sign-out). */
  reset() {
    const t = this.now();
    this.current = { id: this.newId(), start: t, last: t };
    this.write(this.current);
    return this.current.id;
  }
}
