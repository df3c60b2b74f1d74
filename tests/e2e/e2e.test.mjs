// End to end: the whole system as `scripts/dev` brings it up (PostgreSQL, origin, edge worker
// under wrangler dev with local KV, demo data), driven through the public interfaces only.
// A flag is created at the origin and evaluated at the edge, changed, rolled back; the time from
// each admin write to its visibility at the edge is measured and written to
// target/e2e-propagation.json (reported, never asserted: machines here are shared and noisy).
//
// Run it through scripts/test (which installs the toolchain first), or alone:
//   source scripts/lib/toolchain.sh && node --test tests/e2e/
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { ROOT, sleep, startSystem } from '../support/system.mjs';

const VISIBLE_LIMIT_MS = 30_000; // a change not visible at the edge by then is a failure
const SAMPLES = 20;

let system;
after(async () => system?.stop());

test('scripts/dev brings the system up; a change at the origin reaches the edge; rollback too', async (t) => {
  system = await startSystem('e2e');
  const { origin, edge, token, admin, process: dev } = system;
  assert.ok(system.output().includes(token), 'the dev command prints the admin token');

  const evaluate = async (base, flagKey, userId) => {
    const response = await fetch(`${base}/api/v1/flags/${flagKey}?userId=${userId}&environment=production&country=US`);
    return { status: response.status, body: await response.json() };
  };
  // Polls the edge until `predicate` holds; returns the milliseconds it took since `since`.
  const visibleAtEdge = async (flagKey, predicate, since) => {
    for (;;) {
      const { status, body } = await evaluate(edge, flagKey, 'e2e-user');
      if (predicate(status, body)) return performance.now() - since;
      if (performance.now() - since > VISIBLE_LIMIT_MS) {
        assert.fail(`not visible at the edge after ${VISIBLE_LIMIT_MS} ms; last answer ${status} ${JSON.stringify(body)}`);
      }
      await sleep(10);
    }
  };

  await t.test('the demo flag is served at the edge exactly as the origin serves it', async () => {
    const since = performance.now();
    await visibleAtEdge('new-checkout-flow', (status) => status === 200, since);
    const atEdge = await evaluate(edge, 'new-checkout-flow', 'user123');
    const atOrigin = await evaluate(origin, 'new-checkout-flow', 'user123');
    assert.equal(atEdge.status, 200);
    assert.equal(atEdge.body.enabled, true);
    assert.equal(atEdge.body.reason, 'user-targeted');
    assert.deepEqual(atEdge.body, atOrigin.body);
  });

  const timings = { create: [], change: [], rollback: [] };

  await t.test('create, change and roll back a flag; each is visible at the edge', async () => {
    const flag = { flagKey: 'e2e-flag', environment: 'production', enabled: true, defaultValue: false, description: 'end-to-end' };
    let since = performance.now();
    const created = await admin('POST', '/admin/flags?environment=production', flag);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    timings.create.push(await visibleAtEdge('e2e-flag', (s, b) => s === 200 && b.enabled === true, since));

    since = performance.now();
    const changed = await admin('PUT', '/admin/flags/e2e-flag?environment=production', { enabled: false }, { 'if-match': '1' });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    timings.change.push(await visibleAtEdge('e2e-flag', (s, b) => s === 200 && b.enabled === false && b.reason === 'flag-disabled', since));

    since = performance.now();
    const rolledBack = await admin('POST', '/admin/flags/e2e-flag/rollback', { environment: 'production', version: 1 });
    assert.equal(rolledBack.status, 200, JSON.stringify(rolledBack.body));
    timings.rollback.push(await visibleAtEdge('e2e-flag', (s, b) => s === 200 && b.enabled === true && b.version === 3, since));

    const history = await admin('GET', '/admin/flags/e2e-flag/history?environment=production');
    assert.equal(history.status, 200);
    assert.ok(JSON.stringify(history.body).includes('rollback'), 'history records the rollback');
  });

  await t.test('admin write to edge visibility, measured over repeated toggles', async () => {
    let version = 3;
    for (let i = 0; i < SAMPLES; i += 1) {
      const enabled = i % 2 === 1;
      const since = performance.now();
      const changed = await admin('PUT', '/admin/flags/e2e-flag?environment=production', { enabled }, { 'if-match': String(version) });
      assert.equal(changed.status, 200, JSON.stringify(changed.body));
      version += 1;
      timings.change.push(await visibleAtEdge('e2e-flag', (s, b) => s === 200 && b.version === version, since));
    }
    const sorted = [...timings.change].sort((a, b) => a - b);
    const pct = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
    const report = {
      samples: sorted.length,
      p50Ms: Math.round(pct(50)),
      p95Ms: Math.round(pct(95)),
      maxMs: Math.round(sorted[sorted.length - 1]),
      createMs: Math.round(timings.create[0]),
      rollbackMs: Math.round(timings.rollback[0]),
    };
    mkdirSync(join(ROOT, 'target'), { recursive: true });
    writeFileSync(join(ROOT, 'target', 'e2e-propagation.json'), `${JSON.stringify(report, null, 2)}\n`);
    t.diagnostic(`admin write -> visible at edge: ${JSON.stringify(report)}`);
  });

  await t.test('Ctrl-C stops everything scripts/dev started', async () => {
    const exited = new Promise((resolve) => dev.on('exit', resolve));
    dev.kill('SIGINT');
    await exited;
    for (const url of [`${origin}/healthz`, `${edge}/healthz`]) {
      let down = false;
      for (let i = 0; i < 50 && !down; i += 1) {
        try { await fetch(url); await sleep(200); } catch { down = true; }
      }
      assert.ok(down, `${url} still answers after Ctrl-C`);
    }
  });
});
