// Backend-origin allowlist: which request URLs may carry `traceparent`.
// Exact origins (scheme + host + port), optionally with one leading `*.` wildcard label.

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Compile one origin entry to an anchored RegExp matching full URLs of that origin.
 * Accepts `https://api.example.com`, `http://127.0.0.1:8000`, `https://*.example.com`
 * or a RegExp (passed through unchanged). A trailing path is ignored.
 * @example originToRegExp('https://api.example.com').test('https://api.example.com/threads') // true
 * @param {string|RegExp} origin
 * @returns {RegExp}
 */
export function originToRegExp(origin) {
  if (origin instanceof RegExp) return origin;
  const m = /^(https?):\/\/(\*\.)?([^/?#:]+)(?::(\d+))?(?:[/?#].*)?$/i.exec(String(origin).trim());
  if (!m) throw new TypeError(`agentpress-otel: invalid backend origin ${JSON.stringify(origin)}`);
  const scheme = m[1].toLowerCase();
  const wildcard = Boolean(m[2]);
  const host = m[3].toLowerCase();
  let port = m[4] ?? '';
  // URL.href drops default ports, so match the normalised form.
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = '';
  const hostRe = (wildcard ? '(?:[a-z0-9-]+\\.)+' : '') + escapeRe(host);
  return new RegExp(`^${scheme}://${hostRe}${port ? `:${port}` : ''}(?=[/?#]|$)`, 'i');
}

/**
 * Compile an allowlist. Returns the RegExps (for the fetch instrumentation) and a matcher.
 * @param {Array<string|RegExp>} origins
 */
export function compileOrigins(origins = []) {
  const list = (Array.isArray(origins) ? origins : [origins]).filter(Boolean).map(originToRegExp);
  return {
    regexps: list,
    /** @param {string} url absolute or relative URL; relative ones resolve against `base` */
    matches(url, base) {
      let href;
      try {
        href = new URL(url, base).href;
      } catch {
        return false;
      }
      return list.some((re) => {
        re.lastIndex = 0;
        return re.test(href);
      });
    },
  };
}

/** Escape a collector endpoint so the fetch instrumentation never traces its own exports. */
export function endpointIgnoreRegExp(endpoint, base) {
  let href = endpoint;
  try {
    href = new URL(endpoint, base).href;
  } catch {
    // keep as given
  }
  return new RegExp(`^${escapeRe(href.replace(/\/+$/, ''))}(?:/|$)`);
}
