import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileOrigins, originToRegExp, endpointIgnoreRegExp } from '../src/origins.js';

test('exact origin matches its URLs only', () => {
  const m = compileOrigins(['https://api.example.com']);
  assert.ok(m.matches('https://api.example.com/threads'));
  assert.ok(m.matches('https://api.example.com'));
  assert.ok(m.matches('https://api.example.com?x=1'));
  assert.ok(m.matches('https://API.example.com/x'));
  assert.ok(!m.matches('https://api.example.com.evil.test/x'), 'suffix attack');
  assert.ok(!m.matches('https://api.example.comx/x'));
  assert.ok(!m.matches('http://api.example.com/x'), 'scheme differs');
  assert.ok(!m.matches('https://api.example.com:8443/x'), 'port differs');
  assert.ok(!m.matches('https://evil.test/?u=https://api.example.com/'));
});

test('ports: explicit ones must match, default ones are normalised', () => {
  const m = compileOrigins(['http://127.0.0.1:8000', 'https://b.test:443']);
  assert.ok(m.matches('http://127.0.0.1:8000/api'));
  assert.ok(!m.matches('http://127.0.0.1:80001/api'));
  assert.ok(!m.matches('http://127.0.0.1/api'));
  assert.ok(m.matches('https://b.test/x'));
  assert.ok(m.matches('https://b.test:443/x'), 'URL() drops the default port');
});

test('wildcard subdomains match one or more labels but not the apex or lookalikes', () => {
  const m = compileOrigins(['https://*.example.com']);
  assert.ok(m.matches('https://api.example.com/x'));
  assert.ok(m.matches('https://eu.api.example.com/x'));
  assert.ok(!m.matches('https://example.com/x'));
  assert.ok(!m.matches('https://evilexample.com/x'));
  assert.ok(!m.matches('https://api.example.com.evil.test/x'));
});

test('relative URLs resolve against the page', () => {
  const m = compileOrigins(['http://localhost:3000']);
  assert.ok(m.matches('/api/x', 'http://localhost:3000/page'));
  assert.ok(!m.matches('/api/x', 'http://localhost:4000/page'));
});

test('a trailing path in the configured origin is ignored; RegExps pass through', () => {
  assert.ok(originToRegExp('https://a.test/api/').test('https://a.test/other'));
  const re = /^https:\/\/x\.test\//;
  assert.equal(originToRegExp(re), re);
});

test('invalid entries are rejected loudly at init', () => {
  assert.throws(() => originToRegExp('api.example.com'), TypeError);
  assert.throws(() => originToRegExp('ftp://a.test'), TypeError);
});

test('empty list matches nothing', () => {
  assert.ok(!compileOrigins([]).matches('https://a.test/'));
});

test('the collector endpoint is ignored by fetch tracing, not its neighbours', () => {
  const re = endpointIgnoreRegExp('/otlp', 'http://localhost:3000/');
  assert.ok(re.test('http://localhost:3000/otlp/v1/traces'));
  assert.ok(!re.test('http://localhost:3000/otlpx/v1/traces'));
});
