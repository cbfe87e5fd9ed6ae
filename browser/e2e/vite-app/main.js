// Bundled by Vite from the installed package (node_modules/@agentpress-otel/browser), as a user's app would be.
import { initAgentpressOtel, VERSION } from '@agentpress-otel/browser';

// The Collector's browser receiver comes from the page URL so the test can use ephemeral ports.
const q = new URLSearchParams(location.search);
const tel = initAgentpressOtel({
  endpoint: q.get('collector'),
  serviceName: 'vite-e2e-frontend',
  environment: 'test',
  batch: { scheduledDelayMillis: 200 },
});

tel.tracer.startActiveSpan('vite-app loaded', (span) => {
  span.setAttribute('app.bundler', 'vite');
  span.setAttribute('app.package_version', VERSION);
  span.end();
});
tel.flush().then(
  () => { window.__apotel_done = 'ok'; document.getElementById('out').textContent = 'flushed'; },
  (e) => { window.__apotel_done = `error: ${e}`; },
);
