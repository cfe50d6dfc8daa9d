// Preload for the tests that run EvoLink's own published MCP client (@evolinkai/evolink-media) against Reelgate:
// `node --import <this file> <client>`. The client's API origin is hard-coded (https://api.evolink.ai, in its
// dist/core/src/config.js) with no setting to change it, so this wraps globalThis.fetch and rewrites that one origin
// to EVOLINK_TEST_BASE_URL (Reelgate on loopback). Nothing else about a request changes: path, query, method,
// headers and body go through as the client made them. Any request that would not end up on loopback is refused,
// so a test never sends traffic off the machine. With EVOLINK_TEST_FETCH_LOG set, each request is also appended to
// that file as one JSON line ({method, url, body}) so a test can see exactly what the client sent.
import { appendFileSync } from 'node:fs';

const FROM = 'https://api.evolink.ai';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const target = process.env.EVOLINK_TEST_BASE_URL ?? '';
if (!target) {
  throw new Error('evolink_base_url.mjs: set EVOLINK_TEST_BASE_URL to the Reelgate origin (http://127.0.0.1:PORT)');
}
const to = new URL(target).origin;
if (!LOOPBACK.has(new URL(to).hostname)) {
  throw new Error(`evolink_base_url.mjs: ${to} is not a loopback origin`);
}
const log = process.env.EVOLINK_TEST_FETCH_LOG ?? '';
const realFetch = globalThis.fetch;

function rewrite(url) {
  // Only the origin: "https://api.evolink.ai/v1/tasks/x" -> "http://127.0.0.1:PORT/v1/tasks/x".
  return url === FROM || url.startsWith(`${FROM}/`) ? to + url.slice(FROM.length) : url;
}

function record(method, url, body) {
  if (log) {
    appendFileSync(log, `${JSON.stringify({ method, url, body: typeof body === 'string' ? body : null })}\n`);
  }
}

globalThis.fetch = async function fetchOnLoopback(input, init) {
  const isRequest = typeof Request !== 'undefined' && input instanceof Request;
  const before = isRequest ? input.url : String(input);
  const after = rewrite(before);
  if (!LOOPBACK.has(new URL(after).hostname)) {
    throw new Error(`evolink_base_url.mjs: refusing a request off loopback: ${before}`);
  }
  record(init?.method ?? (isRequest ? input.method : 'GET'), after, init?.body);
  if (isRequest) {
    return realFetch(new Request(after, input), init);
  }
  return realFetch(input instanceof URL ? new URL(after) : after, init);
};
