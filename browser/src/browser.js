// DOM-facing capture: global errors, user actions, page load and route changes.
// Every listener is wrapped so telemetry can never throw into the app.

import { SeverityNumber } from '@opentelemetry/api';
import { redactText, redactUrl } from './redact.js';

const MAX_STACK = 4096; // x batch size must stay under the receiver body limit (256 KiB)
const MAX_NAME = 80;
const MAX_MESSAGE = 1024;

/** Describe an error-ish value as OTel exception attributes (redacted, bounded). */
export function exceptionAttributes(err, fallbackMessage) {
  if (err instanceof Error || (err && typeof err === 'object' && 'message' in err)) {
    return {
      'exception.type': String(err.name || err.constructor?.name || 'Error'),
      // Redact before truncating, so a cut can't leave half a secret that no pattern recognises.
      'exception.message': redactText(String(err.message ?? fallbackMessage ?? '')).slice(0, MAX_MESSAGE),
      'exception.stacktrace': redactText(String(err.stack || '')).slice(0, MAX_STACK),
    };
  }
  let message = fallbackMessage ?? '';
  try {
    message = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    message = String(err);
  }
  return {
    'exception.type': typeof err === 'string' ? 'Error' : typeof err,
    'exception.message': redactText(String(message)).slice(0, MAX_MESSAGE),
  };
}

/** Emit one `exception` log record. */
export function emitException(logger, err, extra = {}, fallbackMessage) {
  const attributes = { ...exceptionAttributes(err, fallbackMessage), ...extra };
  logger.emit({
    eventName: 'exception',
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: redactText(attributes['exception.message']),
    attributes,
  });
}

/** window `error` + `unhandledrejection` → exception log records, capped per page to stop loops. */
export function installErrorCapture(win, logger, { maxPerMinute = 60 } = {}, onError) {
  let windowStart = 0;
  let count = 0;
  const allow = () => {
    const now = Date.now();
    if (now - windowStart > 60_000) {
      windowStart = now;
      count = 0;
    }
    return ++count <= maxPerMinute;
  };
  const onWindowError = (ev) => {
    try {
      if (!allow()) return;
      const extra = { 'exception.source': 'window.onerror' };
      if (ev.filename) extra['code.filepath'] = ev.filename;
      if (ev.lineno) extra['code.lineno'] = ev.lineno;
      if (ev.colno) extra['code.column'] = ev.colno;
      emitException(logger, ev.error ?? ev.message, extra, ev.message);
    } catch (e) {
      onError(e);
    }
  };
  const onRejection = (ev) => {
    try {
      if (!allow()) return;
      emitException(logger, ev.reason, { 'exception.source': 'unhandledrejection' }, 'Unhandled promise rejection');
    } catch (e) {
      onError(e);
    }
  };
  win.addEventListener('error', onWindowError);
  win.addEventListener('unhandledrejection', onRejection);
  return () => {
    win.removeEventListener('error', onWindowError);
    win.removeEventListener('unhandledrejection', onRejection);
  };
}

const ACTION_ROLES = 'button,a[href],[role=button],[role=link],[role=menuitem],[role=tab],[role=option],[role=checkbox],[role=switch],input[type=submit],input[type=button],summary';

// Elements whose text or value is what the user typed or chose: never read.
const FORM_FIELDS = new Set(['INPUT', 'TEXTAREA', 'SELECT']);
// Inputs whose `value` attribute is a label written by the developer, not user data.
const LABEL_INPUT_TYPES = new Set(['submit', 'button', 'reset']);

function visibleLabel(el) {
  const tag = String(el.tagName || '').toUpperCase();
  if (tag === 'INPUT') {
    const type = String(el.getAttribute?.('type') || 'text').toLowerCase();
    // `getAttribute('value')`, never `.value` (what was typed), and only on button-like inputs.
    return LABEL_INPUT_TYPES.has(type) ? el.getAttribute?.('value') : null;
  }
  if (FORM_FIELDS.has(tag) || el.isContentEditable || el.getAttribute?.('contenteditable') === 'true') return null;
  return el.innerText ?? el.textContent;
}

/**
 * A readable, bounded name for a clicked element: the action attribute, aria-label, title,
 * visible text (buttons and links only), or `tag#id`. Never what a user typed: the value and
 * text of text fields, text areas, selects and editable content are not read.
 */
export function targetName(el, actionAttribute) {
  const pick = [
    el.getAttribute?.(actionAttribute),
    el.getAttribute?.('aria-label'),
    el.getAttribute?.('title'),
    visibleLabel(el),
  ];
  for (const p of pick) {
    const s = typeof p === 'string' ? p.replace(/\s+/g, ' ').trim() : '';
    if (s) return redactText(s).slice(0, MAX_NAME);
  }
  const tag = String(el.tagName || 'element').toLowerCase();
  return el.id ? `${tag}#${el.id}` : tag;
}

/** Clicks on elements with the action attribute or an interactive role → `browser.user_action.click` events. */
export function installActionCapture(doc, logger, { actionAttribute = 'data-otel-action' } = {}, onError) {
  const selector = `[${actionAttribute}],${ACTION_ROLES}`;
  const onClick = (ev) => {
    try {
      const start = ev.target && ev.target.closest ? ev.target : ev.target?.parentElement;
      const el = start?.closest?.(selector);
      if (!el) return;
      const attributes = {
        'browser.user_action.type': 'click',
        'browser.user_action.target.name': targetName(el, actionAttribute),
        'browser.user_action.target.tag': String(el.tagName || '').toLowerCase(),
        'url.full': String(doc.location?.href ?? ''),
      };
      const role = el.getAttribute('role');
      if (role) attributes['browser.user_action.target.role'] = role;
      if (el.id) attributes['browser.user_action.target.id'] = el.id;
      if (el.hasAttribute(actionAttribute)) attributes['browser.user_action.name'] = attributes['browser.user_action.target.name'];
      logger.emit({
        eventName: 'browser.user_action.click',
        severityNumber: SeverityNumber.INFO,
        severityText: 'INFO',
        body: `click ${attributes['browser.user_action.target.name']}`,
        attributes,
      });
    } catch (e) {
      onError(e);
    }
  };
  // Capture phase: still seen when the app calls stopPropagation().
  doc.addEventListener('click', onClick, true);
  return () => doc.removeEventListener('click', onClick, true);
}

/** Page load span (from Navigation Timing) and a `browser.page_view` event per load / route change. */
export function installNavigationCapture(win, tracer, logger, onError) {
  const doc = win.document;
  let lastPath = '';
  const emitView = (kind) => {
    try {
      const loc = win.location;
      const path = loc.pathname + loc.search;
      if (kind !== 'load' && path === lastPath) return; // replaceState with the same URL is noise
      const previous = lastPath;
      lastPath = path;
      const attributes = { 'browser.page_view.type': kind, 'url.full': loc.href, 'url.path': loc.pathname };
      if (previous && kind !== 'load') attributes['browser.page_view.previous_path'] = redactUrl(previous);
      if (kind === 'load' && doc.referrer) attributes['http.request.header.referer'] = redactUrl(doc.referrer);
      logger.emit({
        eventName: 'browser.page_view',
        severityNumber: SeverityNumber.INFO,
        severityText: 'INFO',
        body: `${kind} ${redactUrl(loc.pathname)}`,
        attributes,
      });
    } catch (e) {
      onError(e);
    }
  };

  const emitLoadSpan = () => {
    try {
      const perf = win.performance;
      const nav = perf?.getEntriesByType?.('navigation')?.[0];
      if (!nav) return;
      const t0 = perf.timeOrigin;
      const end = nav.loadEventEnd || perf.now();
      const span = tracer.startSpan('documentLoad', {
        startTime: t0 + nav.startTime,
        attributes: {
          'url.full': win.location.href,
          'browser.navigation.type': nav.type,
          'browser.navigation.ttfb_ms': Math.round(nav.responseStart - nav.startTime),
          'browser.navigation.dom_content_loaded_ms': Math.round(nav.domContentLoadedEventEnd - nav.startTime),
          'browser.navigation.load_ms': Math.round(end - nav.startTime),
          'browser.navigation.transfer_size': nav.transferSize ?? 0,
        },
      });
      span.end(t0 + end);
    } catch (e) {
      onError(e);
    }
  };

  // Next task: lets the app call setThreadContext() right after init and still tag the load event.
  setTimeout(() => emitView('load'), 0);
  const onLoad = () => setTimeout(emitLoadSpan, 0); // loadEventEnd is set after handlers return
  if (doc.readyState === 'complete') onLoad();
  else win.addEventListener('load', onLoad, { once: true });

  // History API: wrap pushState/replaceState once, restore on shutdown.
  const hist = win.history;
  const origPush = hist.pushState;
  const origReplace = hist.replaceState;
  const wrap = (orig) =>
    function agentpressOtelHistory(...args) {
      const ret = orig.apply(this, args);
      emitView('route_change');
      return ret;
    };
  hist.pushState = wrap(origPush);
  hist.replaceState = wrap(origReplace);
  const onPop = () => emitView('route_change');
  win.addEventListener('popstate', onPop);
  win.addEventListener('hashchange', onPop);
  return () => {
    if (hist.pushState.name === 'agentpressOtelHistory') hist.pushState = origPush;
    if (hist.replaceState.name === 'agentpressOtelHistory') hist.replaceState = origReplace;
    win.removeEventListener('popstate', onPop);
    win.removeEventListener('hashchange', onPop);
    win.removeEventListener('load', onLoad);
  };
}
