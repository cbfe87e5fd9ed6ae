// Public types of @agentpress-otel/browser.
import type { Tracer } from '@opentelemetry/api';

export interface AgentpressOtelOptions {
  /** Base URL of the Collector's browser receiver (same-origin route recommended). `/v1/traces` and `/v1/logs` are appended. Default `/otlp`. */
  endpoint?: string;
  serviceName?: string;
  serviceVersion?: string;
  /** Sets `deployment.environment.name`. */
  environment?: string;
  /** Origins that receive `traceparent` on fetch, XHR and `tracedEventSource`: `https://api.example.com`, `https://*.example.com`, or RegExps. Same-origin requests always do. */
  backendOrigins?: Array<string | RegExp>;
  /** Head sampling ratio for traces started in the browser (0..1). Logs (errors, actions) are not sampled. Default 1. */
  sampleRatio?: number;
  captureErrors?: boolean;
  captureActions?: boolean;
  captureNavigation?: boolean;
  captureFetch?: boolean;
  /** XMLHttpRequest spans (axios etc.); same propagation rule as fetch. */
  captureXhr?: boolean;
  /** Attribute naming an action on an element. Default `data-otel-action`. */
  actionAttribute?: string;
  /** Extra fetch URLs not to trace. */
  ignoreUrls?: Array<string | RegExp>;
  /** Extra redaction applied after the built-in one to every string attribute. */
  redact?: (key: string, value: string) => string;
  batch?: { maxExportBatchSize?: number; scheduledDelayMillis?: number; maxQueueSize?: number; exportTimeoutMillis?: number };
  session?: { maxDurationSeconds?: number; inactivityTimeoutSeconds?: number };
  resourceAttributes?: Record<string, string | number | boolean>;
  /** Testing: replace the OTLP exporters. */
  exporters?: { spans?: unknown; logs?: unknown };
  /** Not supported: anything in browser code is public. Passing it disables telemetry with a `console.warn`. */
  headers?: never;
  /** Testing / iframes: the window to instrument. */
  window?: Window;
}

export interface AgentpressOtelHandle {
  enabled: boolean;
  tracer: Tracer;
  logger: unknown;
  sessionId(): string | null;
  /** Start a new session (e.g. on sign-out). */
  resetSession(): string;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
  recordAction(name: string, attributes?: Record<string, string | number | boolean>): void;
  recordError(err: unknown, attributes?: Record<string, string | number | boolean>): void;
}

export interface ThreadIds {
  threadId?: string | null;
  projectId?: string | null;
  agentRunId?: string | null;
}

export function initAgentpressOtel(options?: AgentpressOtelOptions): AgentpressOtelHandle;
export function setThreadContext(ids: ThreadIds): void;
export function clearThreadContext(): void;
export function currentTraceparent(): string | null;
/** An EventSource inside a CLIENT span, with `?traceparent=` added for same-origin URLs and `backendOrigins` only. */
export function tracedEventSource(url: string | URL, init?: EventSourceInit, opts?: { param?: string; name?: string }): EventSource;
export function redactUrl(url: unknown): string;
export function redactText(text: unknown): string;
export function redactAttributes<T extends Record<string, unknown>>(attrs: T, extra?: (key: string, value: string) => string): T;
export function compileOrigins(origins?: Array<string | RegExp>): { regexps: RegExp[]; matches(url: string, base?: string): boolean };
export function originToRegExp(origin: string | RegExp): RegExp;
export const ATTR_THREAD_ID: 'agentpress.thread.id';
export const ATTR_PROJECT_ID: 'agentpress.project.id';
export const ATTR_AGENT_RUN_ID: 'agentpress.agent_run.id';
export const VERSION: string;
export const selfTelemetry: { errors: number; lastError: unknown };
