// agentpress-otel browser entry point: one call wires traces, logs, sessions and capture.
// Nothing secret is accepted: the exporter takes no headers or keys (the browser can't keep them).

import { SeverityNumber, context, logs, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  StackContextManager,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { createSessionLogRecordProcessor, createSessionSpanProcessor } from '@opentelemetry/web-common';

import { compileOrigins, endpointIgnoreRegExp } from './origins.js';
import { ThreadContext, createContextLogProcessor, createContextSpanProcessor } from './processors.js';
import { SessionProvider } from './session.js';
import { installXhrCapture } from './xhr.js';
import { markFetchFailure } from './failures.js';
import { emitException, installActionCapture, installErrorCapture, installNavigationCapture } from './browser.js';

export { redactText, redactUrl, redactAttributes } from './redact.js';
export { compileOrigins, originToRegExp } from './origins.js';
export { ATTR_THREAD_ID, ATTR_PROJECT_ID, ATTR_AGENT_RUN_ID } from './processors.js';

const SCOPE = '@agentpress-otel/browser';
export const VERSION = '0.1.0';

const threadContext = new ThreadContext();
/** Internal error counter: telemetry swallows its own failures, this makes them visible. */
export const selfTelemetry = { errors: 0, lastError: /** @type {unknown} */ (undefined) };
const onInternalError = (e) => {
  selfTelemetry.errors += 1;
  selfTelemetry.lastError = e;
};

let active = null;
// Which URLs may receive `traceparent` (set by initAgentpressOtel; same-origin only until then).
let mayPropagate = (url, base) => sameOrigin(url, base);

function sameOrigin(url, base) {
  try {
    return new URL(url, base).origin === new URL(base).origin;
  } catch {
    return false;
  }
}

function noopHandle() {
  return {
    enabled: false,
    sessionId: () => null,
    resetSession: () => null,
    flush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
    recordAction() {},
    recordError() {},
    tracer: trace.getTracer(SCOPE),
    logger: logs.getLogger(SCOPE),
  };
}

function hostedIn(win) {
  return Boolean(win && win.document && win.location);
}

/**
 * Start browser telemetry. Safe to call on the server (returns a no-op handle) and twice
 * (the second call returns the first handle).
 *
 * @example
 * initAgentpressOtel({
 *   endpoint: '/otlp',                        // same-origin route proxied to the Collector's browser receiver
 *   serviceName: 'agentpress-frontend',
 *   environment: 'production',
 *   backendOrigins: ['https://api.example.com'],
 *   sampleRatio: 0.25,
 * });
 *
 * @param {import('./index.d.ts').AgentpressOtelOptions} options
 * @returns {import('./index.d.ts').AgentpressOtelHandle}
 */
export function initAgentpressOtel(options = {}) {
  if (active) return active;
  const win = options.window ?? globalThis.window;
  if (!hostedIn(win)) return noopHandle();
  try {
    active = start(win, options);
  } catch (e) {
    onInternalError(e);
    // Telemetry is off for this page: say why instead of failing silently.
    globalThis.console?.warn?.(`agentpress-otel: telemetry disabled: ${e && e.message ? e.message : e}`);
    return noopHandle();
  }
  return active;
}

function start(win, opts) {
  const {
    endpoint = '/otlp',
    serviceName = 'browser',
    serviceVersion,
    environment,
    backendOrigins = [],
    sampleRatio = 1,
    captureErrors = true,
    captureActions = true,
    captureNavigation = true,
    captureFetch = true,
    captureXhr = true,
    actionAttribute = 'data-otel-action',
    ignoreUrls = [],
    redact,
    batch = {},
    session = {},
    resourceAttributes = {},
    exporters,
  } = opts;
  if ('headers' in opts) {
    // Headers in browser code are public; refuse rather than leak a key.
    throw new TypeError(
      '`headers` is not supported in the browser (anything in browser code is public); ' +
        'remove it and add credentials on the Collector\'s exporter instead',
    );
  }
  const base = win.location.href;
  const root = new URL(endpoint, base).href.replace(/\/+$/, '');

  const attrs = {
    'service.name': serviceName,
    'telemetry.sdk.language': 'webjs',
    'telemetry.distro.name': 'agentpress-otel',
    'telemetry.distro.version': VERSION,
    ...resourceAttributes,
  };
  if (serviceVersion) attrs['service.version'] = serviceVersion;
  if (environment) attrs['deployment.environment.name'] = environment;
  if (win.navigator?.userAgent) attrs['user_agent.original'] = win.navigator.userAgent;
  const resource = resourceFromAttributes(attrs);

  let storage = null;
  try {
    storage = win.localStorage ?? null;
  } catch {
    // Access to localStorage throws when storage is blocked; sessions then last one page.
  }
  const sessions = new SessionProvider({
    storage,
    maxDurationMs: (session.maxDurationSeconds ?? 4 * 3600) * 1000,
    inactivityMs: (session.inactivityTimeoutSeconds ?? 30 * 60) * 1000,
  });

  const batchOpts = {
    maxExportBatchSize: batch.maxExportBatchSize ?? 30,
    scheduledDelayMillis: batch.scheduledDelayMillis ?? 2000,
    maxQueueSize: batch.maxQueueSize ?? 512,
    exportTimeoutMillis: batch.exportTimeoutMillis ?? 10_000,
  };
  const spanExporter = exporters?.spans ?? new OTLPTraceExporter({ url: `${root}/v1/traces` });
  const logExporter = exporters?.logs ?? new OTLPLogExporter({ url: `${root}/v1/logs` });

  const ratio = Math.min(1, Math.max(0, Number(sampleRatio)));
  const tracerProvider = new TracerProvider({
    resource,
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    spanLimits: { attributeValueLengthLimit: 4096, attributeCountLimit: 64 },
    spanProcessors: [
      createContextSpanProcessor(threadContext, redact, onInternalError),
      createSessionSpanProcessor(sessions),
      new BatchSpanProcessor({ exporter: spanExporter, ...batchOpts }),
    ],
  });
  const loggerProvider = new LoggerProvider({
    resource,
    logRecordLimits: { attributeValueLengthLimit: 4096, attributeCountLimit: 64 },
    processors: [
      createContextLogProcessor(threadContext, redact, onInternalError),
      createSessionLogRecordProcessor(sessions),
      new BatchLogRecordProcessor({ exporter: logExporter, ...batchOpts }),
    ],
  });

  context.setGlobalContextManager(new StackContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(tracerProvider);
  logs.setGlobalLoggerProvider(loggerProvider);

  const tracer = tracerProvider.getTracer(SCOPE, VERSION);
  const logger = loggerProvider.getLogger(SCOPE, VERSION);
  const undo = [];

  const allowed = compileOrigins(backendOrigins);
  mayPropagate = (url, b = base) => allowed.matches(url, b) || sameOrigin(url, b);
  if (captureFetch) {
    undo.push(
      registerInstrumentations({
        tracerProvider,
        instrumentations: [
          new FetchInstrumentation({
            // traceparent only to listed backends (plus same-origin, which the library always allows).
            propagateTraceHeaderCorsUrls: allowed.regexps,
            ignoreUrls: [endpointIgnoreRegExp(root, base), ...ignoreUrls],
            ignoreNetworkEvents: true,
            // Status 0 (network, CORS, abort, timeout): an error span with error.type, as for XHR.
            applyCustomAttributesOnSpan: markFetchFailure,
          }),
        ],
      }),
    );
  }
  if (captureXhr && win.XMLHttpRequest) {
    const ignoreRes = [endpointIgnoreRegExp(root, base), ...ignoreUrls];
    undo.push(
      installXhrCapture(
        win.XMLHttpRequest,
        tracerProvider.getTracer('@agentpress-otel/browser-xhr', VERSION),
        {
          base,
          // Same rule as fetch: listed backends plus same-origin.
          propagate: (u) => mayPropagate(u, base),
          ignore: (u) => ignoreRes.some((r) => (typeof r === 'string' ? u.startsWith(r) : r.test(u))),
        },
        onInternalError,
      ),
    );
  }
  if (captureErrors) undo.push(installErrorCapture(win, logger, {}, onInternalError));
  if (captureActions) undo.push(installActionCapture(win.document, logger, { actionAttribute }, onInternalError));
  if (captureNavigation) undo.push(installNavigationCapture(win, tracer, logger, onInternalError));

  const flush = () =>
    Promise.all([tracerProvider.forceFlush(), loggerProvider.forceFlush()]).then(
      () => undefined,
      (e) => onInternalError(e),
    );
  // Flush both signals when the page is hidden or unloaded; exports use fetch keepalive.
  const onHide = () => {
    if (win.document.visibilityState === 'hidden') flush();
  };
  const onPageHide = () => flush();
  win.document.addEventListener('visibilitychange', onHide);
  win.addEventListener('pagehide', onPageHide);
  undo.push(() => {
    win.document.removeEventListener('visibilitychange', onHide);
    win.removeEventListener('pagehide', onPageHide);
  });

  return {
    enabled: true,
    tracer,
    logger,
    sessionId: () => sessions.getSessionId(),
    /** Start a new session (e.g. on sign-out). */
    resetSession: () => sessions.reset(),
    flush,
    /** Record a named user action that isn't a click (e.g. "prompt submitted"). */
    recordAction(name, attributes = {}) {
      try {
        logger.emit({
          eventName: 'browser.user_action',
          severityNumber: SeverityNumber.INFO,
          severityText: 'INFO',
          body: String(name),
          attributes: { 'browser.user_action.name': String(name), ...attributes },
        });
      } catch (e) {
        onInternalError(e);
      }
    },
    /** Record a caught error (e.g. from a React error boundary or Next's global-error). */
    recordError(err, attributes = {}) {
      try {
        emitException(logger, err, { 'exception.source': 'manual', ...attributes });
      } catch (e) {
        onInternalError(e);
      }
    },
    async shutdown() {
      for (const u of undo.splice(0).reverse()) {
        try {
          if (typeof u === 'function') u();
        } catch (e) {
          onInternalError(e);
        }
      }
      try {
        await Promise.all([tracerProvider.shutdown(), loggerProvider.shutdown()]);
      } catch (e) {
        onInternalError(e);
      }
      trace.disable();
      logs.disable();
      context.disable();
      propagation.disable();
      mayPropagate = (url, b) => sameOrigin(url, b);
      active = null;
    },
  };
}

/**
 * Tag telemetry with the AgentPress thread being viewed. Call again on navigation;
 * pass `null` to remove an id.
 * @example setThreadContext({ threadId: params.threadId, projectId: params.projectId });
 * @param {{threadId?: string|null, projectId?: string|null, agentRunId?: string|null}} ids
 */
export function setThreadContext(ids) {
  try {
    threadContext.set(ids);
  } catch (e) {
    onInternalError(e);
  }
}

/** Remove all thread/project/run ids (e.g. on leaving a thread page). */
export function clearThreadContext() {
  threadContext.clear();
}

/** `traceparent` of the active span (for a manual query string or message field), or null when there is none. */
export function currentTraceparent() {
  const span = trace.getActiveSpan();
  const sc = span?.spanContext();
  if (!sc || !trace.isSpanContextValid(sc)) return null;
  return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
}

/**
 * Open an EventSource inside a span and carry its traceparent in the query string
 * (EventSource cannot send headers). The backend reads `?traceparent=`. Like fetch, the
 * parameter is added only for same-origin URLs and the `backendOrigins` given to
 * `initAgentpressOtel`; other URLs are opened unchanged (the span is still recorded).
 * @example const es = tracedEventSource(`${API}/agent-run/${id}/stream?token=${t}`);
 */
export function tracedEventSource(url, init, { param = 'traceparent', name = 'EventSource' } = {}) {
  const ES = globalThis.EventSource;
  if (!ES) throw new TypeError('agentpress-otel: EventSource is not available here');
  const tracer = trace.getTracer(SCOPE, VERSION);
  const span = tracer.startSpan(name, { kind: 2 /* CLIENT */, attributes: { 'url.full': String(url) } });
  let target = String(url);
  try {
    const sc = span.spanContext();
    const base = globalThis.location?.href;
    if (trace.isSpanContextValid(sc) && mayPropagate(target, base)) {
      const u = new URL(target, base);
      u.searchParams.set(param, `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`);
      target = u.href;
    }
  } catch (e) {
    onInternalError(e);
  }
  const es = new ES(target, init);
  // The span covers connection setup; it ends on first open or error to stay short-lived.
  const done = (ok) => () => {
    if (!ok) span.setStatus({ code: 2, message: 'EventSource error' });
    span.end();
  };
  es.addEventListener('open', done(true), { once: true });
  es.addEventListener('error', done(false), { once: true });
  return es;
}
