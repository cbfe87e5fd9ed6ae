// XMLHttpRequest spans (axios and older clients use XHR). The OpenTelemetry XHR instrumentation
// exists only on the 2.x line, which cannot share a bundle with our 3.x set; this is the small subset
// we need: one CLIENT span per request, traceparent only to allowed origins, status and errors.

import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';

const STATE = Symbol('agentpress-otel.xhr');

/**
 * Patch `XMLHttpRequest.prototype.open/send`. Returns an undo function.
 * @param {typeof globalThis.XMLHttpRequest} XHR
 * @param {import('@opentelemetry/api').Tracer} tracer
 * @param {{ propagate: (url: string) => boolean, ignore: (url: string) => boolean, base?: string }} opts
 * @param {(e: unknown) => void} onError
 */
export function installXhrCapture(XHR, tracer, { propagate, ignore, base }, onError) {
  if (!XHR || !XHR.prototype) return () => {};
  const proto = XHR.prototype;
  const origOpen = proto.open;
  const origSend = proto.send;

  proto.open = function agentpressOtelOpen(method, url, ...rest) {
    try {
      const href = new URL(String(url), base).href;
      this[STATE] = ignore(href) ? null : { method: String(method || 'GET').toUpperCase(), href };
    } catch (e) {
      this[STATE] = null;
      onError(e);
    }
    return origOpen.call(this, method, url, ...rest);
  };

  proto.send = function agentpressOtelSend(body) {
    const st = this[STATE];
    if (!st) return origSend.call(this, body);
    let span;
    try {
      const u = new URL(st.href);
      span = tracer.startSpan(st.method, {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': st.method,
          'url.full': st.href,
          'server.address': u.hostname,
          ...(u.port ? { 'server.port': Number(u.port) } : {}),
        },
      });
      if (propagate(st.href)) {
        const carrier = {};
        propagation.inject(trace.setSpan(context.active(), span), carrier);
        for (const [k, v] of Object.entries(carrier)) this.setRequestHeader(k, v);
      }
      const end = (errorType) => () => {
        try {
          const status = this.status;
          if (status) span.setAttribute('http.response.status_code', status);
          if (errorType || status >= 400 || status === 0) {
            span.setAttribute('error.type', errorType || String(status));
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
        } catch (e) {
          onError(e);
        }
      };
      // Exactly one of these fires per request, before `loadend`.
      this.addEventListener('load', end(''), { once: true });
      this.addEventListener('error', end('network_error'), { once: true });
      this.addEventListener('abort', end('aborted'), { once: true });
      this.addEventListener('timeout', end('timeout'), { once: true });
    } catch (e) {
      onError(e);
    }
    return origSend.call(this, body);
  };

  return () => {
    if (proto.open.name === 'agentpressOtelOpen') proto.open = origOpen;
    if (proto.send.name === 'agentpressOtelSend') proto.send = origSend;
  };
}
