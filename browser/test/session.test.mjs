import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionProvider } from '../src/session.js';

class Storage {
  constructor() { this.m = new Map(); this.writes = 0; }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.writes++; this.m.set(k, String(v)); }
}

function make(storage, clock) {
  let n = 0;
  return new SessionProvider({ storage, maxDurationMs: 3600_000, inactivityMs: 600_000, now: () => clock.t, newId: () => `id${++n}` });
}

test('the first id is stable across calls and persisted synchronously', () => {
  const clock = { t: 1_000_000 };
  const st = new Storage();
  const s = make(st, clock);
  const id = s.getSessionId();
  assert.equal(s.getSessionId(), id);
  assert.equal(JSON.parse(st.getItem('agentpress-otel.session')).id, id);
});

test('a new page (same storage) keeps the session', () => {
  const clock = { t: 1_000_000 };
  const st = new Storage();
  const a = make(st, clock).getSessionId();
  clock.t += 60_000;
  assert.equal(make(st, clock).getSessionId(), a);
});

test('inactivity and max duration rotate the id; activity extends it', () => {
  const clock = { t: 1_000_000 };
  const st = new Storage();
  const s = make(st, clock);
  const a = s.getSessionId();
  for (let i = 0; i < 10; i++) {
    clock.t += 500_000; // under the 600 s inactivity limit each time
    if (clock.t - 1_000_000 <= 3600_000) assert.equal(s.getSessionId(), a);
  }
  assert.notEqual(s.getSessionId(), a, 'past max duration');
  const b = s.getSessionId();
  clock.t += 700_000;
  assert.notEqual(s.getSessionId(), b, 'past inactivity');
});

test('storage writes are throttled', () => {
  const clock = { t: 1_000_000 };
  const st = new Storage();
  const s = make(st, clock);
  for (let i = 0; i < 1000; i++) {
    clock.t += 1;
    s.getSessionId();
  }
  assert.ok(st.writes <= 2, `writes=${st.writes}`);
});

test('works without storage and with throwing storage', () => {
  const clock = { t: 1 };
  assert.match(new SessionProvider({ now: () => clock.t }).getSessionId(), /^[0-9a-f]{32}$/);
  const bad = { getItem() { throw new Error('blocked'); }, setItem() { throw new Error('blocked'); } };
  const s = new SessionProvider({ storage: bad, now: () => clock.t });
  assert.equal(s.getSessionId(), s.getSessionId());
});

test('reset starts a new session', () => {
  const clock = { t: 1 };
  const s = make(new Storage(), clock);
  const a = s.getSessionId();
  assert.notEqual(s.reset(), a);
});
