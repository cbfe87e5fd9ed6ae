// A request that got no HTTP answer (network down, DNS, connection refused, a CORS refusal, an abort, a timeout)
// has status 0. fetch() rejects for these and the upstream fetch instrumentation ends the span UNSET; we mark it
// like the XHR capture does (xhr.js): an ERROR span with error.type, so the Collector's tail sampling keeps it
// (errors policy) and dashboards count it as a failed fetch.
import { SpanStatusCode } from '@opentelemetry/api';

/**
 * error.type of a fetch outcome, or '' when it is not a failure at the network level.
 * `result` is what fetch resolved with (a Response) or rejected with (an Error / DOMException).
 * Opaque responses (mode 'no-cors') also have status 0 but did get an answer the page may not read: not errors.
 * HTTP statuses >= 400 are handled by the instrumentation itself (error.type = the status code).
 *
 * Example: fetchErrorType(new DOMException('The user aborted a request.', 'AbortError')) === 'aborted'
 */
export function fetchErrorType(result) {
  if (result === null || result === undefined) return 'network_error';
  const isResponse = typeof result.status === 'number' && typeof result.type === 'string' && !('message' in result);
  if (isResponse) {
    if (result.status !== 0 || result.type === 'opaque' || result.type === 'opaqueredirect') return '';
    return 'network_error'; // Response.error(): type 'error', status 0
  }
  if (result.name === 'AbortError') return 'aborted';
  if (result.name === 'TimeoutError') return 'timeout';
  return 'network_error'; // TypeError "Failed to fetch": network or CORS (the browser does not say which)
}

/** FetchInstrumentation `applyCustomAttributesOnSpan` hook: runs before the span ends. */
export function markFetchFailure(span, _request, result) {
  const type = fetchErrorType(result);
  if (!type) return;
  span.setAttribute('error.type', type);
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
}
