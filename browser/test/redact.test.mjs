import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactUrl, redactText, redactAttributes, looksSecret } from '../src/redact.js';

const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';

test('token query parameter on the AgentPress stream URL is masked', () => {
  const out = redactUrl(`https://api.example.com/api/agent-run/42/stream?token=${JWT}&x=1`);
  assert.equal(out, 'https://api.example.com/api/agent-run/42/stream?token=REDACTED&x=1');
});

test('known credential parameter names are masked, others kept', () => {
  const out = redactUrl('/cb?access_token=abc&api_key=k1&apiKey=k2&client_secret=s&password=p&page=2');
  assert.equal(out, '/cb?access_token=REDACTED&api_key=REDACTED&apiKey=REDACTED&client_secret=REDACTED&password=REDACTED&page=2');
});

test('relative URLs stay relative and untouched URLs are returned as-is', () => {
  assert.equal(redactUrl('/threads/abc?tab=files'), '/threads/abc?tab=files');
  assert.equal(redactUrl('https://x.test/a?b=c#frag'), 'https://x.test/a?b=c#frag');
});

test('JWT-looking values under innocent names and in path segments are masked', () => {
  assert.equal(redactUrl(`https://x.test/a?state=${JWT}`), 'https://x.test/a?state=REDACTED');
  assert.equal(redactUrl(`https://x.test/share/${JWT}/view`), 'https://x.test/share/REDACTED/view');
});

test('userinfo and fragment tokens are removed', () => {
  assert.equal(redactUrl('https://user:pw@x.test/p'), 'https://x.test/p');
  assert.equal(redactUrl('https://x.test/cb#access_token=abc&state=1'), 'https://x.test/cb#access_token=REDACTED&state=1');
});

test('error messages lose bearer tokens, key=value secrets, JWTs, API keys and URL tokens', () => {
  const msg = `Request to https://api.x.test/s?token=abc123 failed: Authorization: Bearer ${JWT}; api_key="sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA" password=hunter2`;
  const out = redactText(msg);
  assert.ok(!out.includes('abc123'), out);
  assert.ok(!out.includes('eyJ'), out);
  assert.ok(!out.includes('sk-proj-'), out);
  assert.ok(!out.includes('hunter2'), out);
  assert.match(out, /token=REDACTED/);
  assert.match(out, /Authorization: Bearer \[REDACTED\]/);
  assert.match(out, /password=\[REDACTED\]/);
});

test('plain messages are unchanged', () => {
  assert.equal(redactText('TypeError: x is undefined'), 'TypeError: x is undefined');
  assert.equal(redactText(undefined), '');
});

test('attributes: URL keys get URL redaction, secret-named keys are masked, ids are kept', () => {
  const attrs = redactAttributes({
    'url.full': 'https://a.test/x?token=t0k3n',
    'http.request.header.authorization': 'Bearer abcdefghijkl',
    'exception.message': 'boom token=zzz',
    'agentpress.thread.id': 'th-1',
    'session.id': 'abcd1234abcd1234',
    'http.response.status_code': 200,
    list: ['ok', `bad ${JWT}`],
  });
  assert.equal(attrs['url.full'], 'https://a.test/x?token=REDACTED');
  assert.equal(attrs['http.request.header.authorization'], '[REDACTED]');
  assert.equal(attrs['exception.message'], 'boom token=[REDACTED]');
  assert.equal(attrs['agentpress.thread.id'], 'th-1');
  assert.equal(attrs['session.id'], 'abcd1234abcd1234');
  assert.equal(attrs['http.response.status_code'], 200);
  assert.deepEqual(attrs.list, ['ok', 'bad [REDACTED]']);
});

test('an app-supplied redactor runs after ours and cannot break export', () => {
  const a = redactAttributes({ 'user.email': 'a@b.test' }, (k, v) => (k === 'user.email' ? 'masked' : v));
  assert.equal(a['user.email'], 'masked');
  const b = redactAttributes({ k: 'v' }, () => {
    throw new Error('bad hook');
  });
  assert.equal(b.k, 'v');
});

test('looksSecret', () => {
  assert.ok(looksSecret(JWT));
  assert.ok(looksSecret('ghp_aaaaaaaaaaaaaaaaaaaaaaaa'));
  assert.ok(!looksSecret('hello world'));
});

test('stack frames keep their line:column after the URL is redacted', () => {
  const stack = 'Error: boom\n    at handler (http://app.test/page.html?secret=abc:40:15)\n    at http://app.test/x.js?token=t:3:1';
  const out = redactText(stack);
  assert.equal(out, 'Error: boom\n    at handler (http://app.test/page.html?secret=REDACTED:40:15)\n    at http://app.test/x.js?token=REDACTED:3:1');
  assert.equal(redactText('see http://h:8000/p for details'), 'see http://h:8000/p for details');
});
