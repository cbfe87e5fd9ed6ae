// Redaction of URLs, free text and attribute values before anything leaves the page.
// Pure functions with no OpenTelemetry imports, so they are unit-tested under node.

/** Replacement used inside URLs (brackets would be percent-encoded). */
export const URL_MASK = 'REDACTED';
/** Replacement used in free text. */
export const TEXT_MASK = '[REDACTED]';

// Query/fragment parameter names whose value is always a credential.
const SENSITIVE_PARAM =
  /^(?:token|access[_-]?token|id[_-]?token|refresh[_-]?token|auth|authorization|api[_-]?key|apikey|x-api-key|key|secret|client[_-]?secret|password|passwd|pwd|jwt|session|session[_-]?id|sessionid|sig|signature|code|otp|credentials?)$/i;

// Values that look like credentials wherever they appear.
const JWT = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
const KEY_LIKE =
  /\b(?:sk|pk|rk)[-_](?:live[-_]|test[-_]|proj[-_]|ant[-_])?[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_-]{30,}/g;
const AUTH_SCHEME = /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
// `token=...`, `"api_key": "..."`, `password: ...` inside messages.
const KEY_VALUE =
  /\b(access[_-]?token|refresh[_-]?token|id[_-]?token|token|api[_-]?key|apikey|secret|client[_-]?secret|password|passwd|authorization|jwt)(["']?\s*[=:]\s*["']?)(?!\[REDACTED\]|REDACTED\b|Bearer\b|Basic\b)([^\s"'&,;)}\]]+)/gi;

const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/[^\s"'<>()]+?)((?::\d+){1,2})?(?=[\s"'<>()]|$)/gi;

/** True when a single value looks like a credential on its own. */
export function looksSecret(value) {
  if (typeof value !== 'string' || value.length < 8) return false;
  JWT.lastIndex = 0;
  KEY_LIKE.lastIndex = 0;
  return JWT.test(value) || KEY_LIKE.test(value);
}

/**
 * Redact credentials in free text (error messages, stack traces, target names).
 * @example redactText('fetch failed: token=abc123') // 'fetch failed: token=[REDACTED]'
 * @param {unknown} text
 * @returns {string}
 */
export function redactText(text) {
  if (typeof text !== 'string') text = String(text ?? '');
  if (text === '') return text;
  // URLs in text (stack frames end in `:line:col`, often inside parentheses): keep that suffix out of the URL.
  let out = text.replace(URL_IN_TEXT, (_m, u, pos = '') => redactUrl(u) + pos);
  out = out.replace(AUTH_SCHEME, (_m, scheme) => `${scheme} ${TEXT_MASK}`);
  out = out.replace(KEY_VALUE, (_m, k, sep) => `${k}${sep}${TEXT_MASK}`);
  out = out.replace(JWT, TEXT_MASK).replace(KEY_LIKE, TEXT_MASK);
  return out;
}

function redactParams(params) {
  let changed = false;
  for (const [name, value] of [...params]) {
    if (SENSITIVE_PARAM.test(name) || looksSecret(value)) {
      params.set(name, URL_MASK);
      changed = true;
    }
  }
  return changed;
}

/**
 * Redact credentials in a URL: sensitive query/fragment parameters, user:password@,
 * and JWT/API-key-looking path segments. Relative URLs stay relative.
 * @example redactUrl('/api/agent-run/1/stream?token=eyJ...') // '/api/agent-run/1/stream?token=REDACTED'
 * @param {unknown} url
 * @returns {string}
 */
export function redactUrl(url) {
  if (typeof url !== 'string') url = String(url ?? '');
  if (url === '') return url;
  const base = 'http://relative.invalid';
  let u;
  try {
    u = new URL(url, base);
  } catch {
    return redactTextNoUrl(url);
  }
  const relative = !/^[a-z][a-z0-9+.-]*:/i.test(url);
  let changed = false;
  if (u.username || u.password) {
    u.username = '';
    u.password = '';
    changed = true;
  }
  if (u.search && redactParams(u.searchParams)) changed = true;
  // OAuth implicit flow puts tokens in the fragment (`#access_token=...`).
  if (u.hash.includes('=')) {
    const frag = new URLSearchParams(u.hash.slice(1));
    if (redactParams(frag)) {
      u.hash = frag.toString();
      changed = true;
    }
  }
  const path = u.pathname.replace(JWT, URL_MASK).replace(KEY_LIKE, URL_MASK);
  if (path !== u.pathname) {
    u.pathname = path;
    changed = true;
  }
  if (!changed) return url;
  const s = u.toString();
  return relative ? s.slice(base.length) : s;
}

function redactTextNoUrl(text) {
  return text
    .replace(AUTH_SCHEME, (_m, scheme) => `${scheme} ${TEXT_MASK}`)
    .replace(KEY_VALUE, (_m, k, sep) => `${k}${sep}${TEXT_MASK}`)
    .replace(JWT, TEXT_MASK)
    .replace(KEY_LIKE, TEXT_MASK);
}

// Attribute keys whose value is a URL; everything else string-valued is treated as text.
const URL_KEY = /(?:^|\.)(?:url|full|uri|href|referrer|target|location)$|^url\./;
// Attribute keys that must never carry a value (headers copied in by hooks, etc.).
const SECRET_KEY = /authorization|cookie|api[_-]?key|password|secret|token$/i;

/**
 * Redact an attribute map in place (used by the span and log processors).
 * @param {Record<string, unknown>} attrs
 * @param {(key: string, value: string) => string} [extra] optional app-supplied redactor
 * @returns {Record<string, unknown>}
 */
export function redactAttributes(attrs, extra) {
  if (!attrs) return attrs;
  for (const key of Object.keys(attrs)) {
    const value = attrs[key];
    if (typeof value === 'string') {
      attrs[key] = redactValue(key, value, extra);
    } else if (Array.isArray(value)) {
      attrs[key] = value.map((v) => (typeof v === 'string' ? redactValue(key, v, extra) : v));
    }
  }
  return attrs;
}

/** Redact one string value according to its attribute key. */
export function redactValue(key, value, extra) {
  if (SECRET_KEY.test(key) && !key.startsWith('agentpress.') && key !== 'session.id') return TEXT_MASK;
  let out = URL_KEY.test(key) ? redactUrl(value) : redactText(value);
  if (extra) {
    try {
      out = String(extra(key, out));
    } catch {
      // An app-supplied redactor must not break export; keep our redaction.
    }
  }
  return out;
}
