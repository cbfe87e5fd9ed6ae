// Span and log-record processors that stamp AgentPress context and redact before export.
// They only touch attributes; batching and export stay in the SDK's own processors.

import { redactAttributes, redactText } from './redact.js';

export const ATTR_THREAD_ID = 'agentpress.thread.id';
export const ATTR_PROJECT_ID = 'agentpress.project.id';
export const ATTR_AGENT_RUN_ID = 'agentpress.agent_run.id';

/** Mutable holder for the thread being viewed; read on every span start and log emit. */
export class ThreadContext {
  constructor() {
    this.attrs = {};
  }

  /** Merge ids; `null` or `undefined` removes one. */
  set({ threadId, projectId, agentRunId } = {}) {
    const next = { ...this.attrs };
    const put = (k, v) => {
      if (v === undefined) return;
      if (v === null || v === '') delete next[k];
      else next[k] = String(v);
    };
    put(ATTR_THREAD_ID, threadId);
    put(ATTR_PROJECT_ID, projectId);
    put(ATTR_AGENT_RUN_ID, agentRunId);
    this.attrs = next;
  }

  clear() {
    this.attrs = {};
  }
}

const noopAsync = () => Promise.resolve();

/** Adds the thread context at span start; redacts attributes, events and status when the span ends. */
export function createContextSpanProcessor(threadCtx, extraRedactor, onError) {
  return {
    onStart(span) {
      try {
        const a = threadCtx.attrs;
        for (const k in a) span.setAttribute(k, a[k]);
      } catch (e) {
        onError(e);
      }
    },
    // onEnding runs while the span is still writable, so setAttribute still works.
    onEnding(span) {
      try {
        const redacted = redactAttributes({ ...span.attributes }, extraRedactor);
        for (const k in redacted) {
          if (redacted[k] !== span.attributes[k]) span.setAttribute(k, redacted[k]);
        }
        for (const ev of span.events || []) redactAttributes(ev.attributes, extraRedactor);
        if (span.status && span.status.message) span.status.message = redactText(span.status.message);
      } catch (e) {
        onError(e);
      }
    },
    onEnd() {},
    forceFlush: noopAsync,
    shutdown: noopAsync,
  };
}

/** Adds the thread context and redacts body + attributes of every log record. */
export function createContextLogProcessor(threadCtx, extraRedactor, onError) {
  return {
    onEmit(record) {
      try {
        const a = threadCtx.attrs;
        for (const k in a) if (record.attributes[k] === undefined) record.setAttribute(k, a[k]);
        const redacted = redactAttributes({ ...record.attributes }, extraRedactor);
        for (const k in redacted) {
          if (redacted[k] !== record.attributes[k]) record.setAttribute(k, redacted[k]);
        }
        if (typeof record.body === 'string') record.setBody(redactText(record.body));
      } catch (e) {
        onError(e);
      }
    },
    forceFlush: noopAsync,
    shutdown: noopAsync,
  };
}
