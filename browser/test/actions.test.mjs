// Click capture on a minimal fake DOM: which elements count as actions, how they are named,
// and that nothing a user typed is ever read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installActionCapture, targetName } from '../src/browser.js';

// Enough of a selector engine for the capture's selector: `tag`, `[attr]`, `[attr=value]`, `tag[attr]...`, joined by commas.
function matches(el, selector) {
  return selector.split(',').some((part) => {
    const m = /^([a-z]*)((?:\[[^\]]+\])*)$/i.exec(part.trim());
    if (!m) throw new Error(`unsupported selector ${part}`);
    if (m[1] && el.tagName !== m[1].toUpperCase()) return false;
    return [...m[2].matchAll(/\[([^\]=]+)(?:=([^\]]*))?\]/g)].every(([, name, value]) =>
      value === undefined ? el.hasAttribute(name) : el.getAttribute(name) === value.replace(/^["']|["']$/g, ''));
  });
}

class El {
  constructor(tag, attrs = {}, children = []) {
    this.tagName = tag.toUpperCase();
    this.attrs = { ...attrs };
    this.children = children.map((c) => (typeof c === 'string' ? c : Object.assign(c, { parentElement: this })));
    this.parentElement = null;
    this.valueReads = 0;
  }
  getAttribute(n) { return Object.hasOwn(this.attrs, n) ? String(this.attrs[n]) : null; }
  hasAttribute(n) { return Object.hasOwn(this.attrs, n); }
  get id() { return this.attrs.id ?? ''; }
  get isContentEditable() { return this.attrs.contenteditable === 'true'; }
  get textContent() { return this.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join(''); }
  get innerText() { return this.textContent; }
  // What the user typed: reading it is the bug this file guards against.
  get value() { this.valueReads += 1; return 'typed-by-user-4242'; }
  closest(selector) {
    for (let e = this; e; e = e.parentElement) if (matches(e, selector)) return e;
    return null;
  }
}

function capture() {
  const listeners = [];
  const doc = {
    location: { href: 'http://app.test/threads/t-1' },
    addEventListener: (type, fn, capturePhase) => listeners.push({ type, fn, capturePhase }),
    removeEventListener: () => {},
  };
  const records = [];
  const errors = [];
  installActionCapture(doc, { emit: (r) => records.push(r) }, {}, (e) => errors.push(e));
  assert.equal(listeners.length, 1);
  assert.equal(listeners[0].capturePhase, true, 'capture phase: stopPropagation() in the app must not hide clicks');
  return { click: (target) => listeners[0].fn({ target }), records, errors };
}

test('clicks on interactive roles and buttons become browser.user_action.click events', () => {
  const { click, records, errors } = capture();
  const tab = new El('div', { role: 'tab', id: 'files-tab' }, ['Files']);
  const label = new El('span', {}, ['Send']);
  const button = new El('button', { type: 'submit' }, [label]);
  new El('form', {}, [button]);
  click(tab);
  click(label); // the click lands on the span inside the button
  click(new El('div', {}, ['plain text'])); // no role, no attribute: not an action
  click(new El('div', { role: 'presentation' }, ['decor']));
  assert.deepEqual(errors, []);
  assert.equal(records.length, 2);
  const [t, b] = records.map((r) => ({ name: r.eventName, body: r.body, ...r.attributes }));
  assert.equal(t.name, 'browser.user_action.click');
  assert.equal(t['browser.user_action.target.name'], 'Files');
  assert.equal(t['browser.user_action.target.role'], 'tab');
  assert.equal(t['browser.user_action.target.id'], 'files-tab');
  assert.equal(t['browser.user_action.target.tag'], 'div');
  assert.equal(t['browser.user_action.name'], undefined, 'only the action attribute names an action');
  assert.equal(b['browser.user_action.target.name'], 'Send');
  assert.equal(b['browser.user_action.target.tag'], 'button');
  assert.equal(b.body, 'click Send');
  assert.equal(b['url.full'], 'http://app.test/threads/t-1');
});

test('the action attribute marks any element and names the action', () => {
  const { click, records } = capture();
  click(new El('li', { 'data-otel-action': 'open-thread' }, ['Thread 42']));
  assert.equal(records.length, 1);
  assert.equal(records[0].attributes['browser.user_action.target.name'], 'open-thread');
  assert.equal(records[0].attributes['browser.user_action.name'], 'open-thread');
});

test('name fallbacks: action attribute, aria-label, title, visible text, then tag#id', () => {
  const attr = 'data-otel-action';
  const all = { [attr]: 'ask-agent', 'aria-label': 'Ask the agent', title: 'Ask (Ctrl+Enter)' };
  assert.equal(targetName(new El('button', all, ['Ask']), attr), 'ask-agent');
  const { [attr]: _a, ...noAttr } = all;
  assert.equal(targetName(new El('button', noAttr, ['Ask']), attr), 'Ask the agent');
  const { 'aria-label': _b, ...titleOnly } = noAttr;
  assert.equal(targetName(new El('button', titleOnly, ['Ask']), attr), 'Ask (Ctrl+Enter)');
  assert.equal(targetName(new El('button', {}, ['  Ask \n  the   agent ']), attr), 'Ask the agent');
  assert.equal(targetName(new El('button', { id: 'send' }, ['   ']), attr), 'button#send');
  assert.equal(targetName(new El('a', { href: '/x' }, []), attr), 'a');
  // An empty attribute or label falls through to the next source.
  assert.equal(targetName(new El('button', { [attr]: '', 'aria-label': ' ' }, ['Stop']), attr), 'Stop');
  // Bounded and redacted.
  assert.equal(targetName(new El('button', {}, ['x'.repeat(300)]), attr).length, 80);
  assert.equal(targetName(new El('button', {}, ['Open ?token=abc123def456']), attr).includes('abc123def456'), false);
});

test('what a user typed is never captured: input values, text areas, selects, editable content', () => {
  const { click, records } = capture();
  const attr = { 'data-otel-action': '' }; // marked, but with no name: the fallbacks must not read user data
  const text = new El('input', { ...attr, type: 'text', id: 'q', value: 'prefilled-secret-1' });
  const password = new El('input', { ...attr, type: 'password', value: 'hunter2-secret' });
  const untyped = new El('input', { ...attr, value: 'untyped-secret' }); // no type = text
  const area = new El('textarea', attr, ['typed into the textarea secret']);
  const select = new El('select', attr, [new El('option', {}, ['Option secret A']), new El('option', {}, ['B'])]);
  const editable = new El('div', { ...attr, contenteditable: 'true' }, ['draft message secret']);
  const submit = new El('input', { type: 'submit', value: 'Search' });
  for (const el of [text, password, untyped, area, select, editable, submit]) click(el);
  assert.equal(records.length, 7);
  const names = records.map((r) => r.attributes['browser.user_action.target.name']);
  assert.deepEqual(names, ['input#q', 'input', 'input', 'textarea', 'select', 'div', 'Search']);
  const exported = JSON.stringify(records);
  for (const secret of ['prefilled', 'hunter2', 'untyped', 'typed into', 'Option secret', 'draft', 'typed-by-user']) {
    assert.ok(!exported.includes(secret), secret);
  }
  for (const el of [text, password, untyped, area, select, editable, submit]) assert.equal(el.valueReads, 0);
});

test('a failing element never throws into the app', () => {
  const { click, records, errors } = capture();
  const bad = new El('button', {}, ['x']);
  bad.getAttribute = () => { throw new Error('detached'); };
  assert.doesNotThrow(() => click(bad));
  assert.equal(records.length, 0);
  assert.equal(errors.length, 1);
});
