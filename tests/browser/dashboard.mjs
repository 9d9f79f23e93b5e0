// dashboard.mjs — the dashboard in a real browser (Debian's chromium, headless, driven by
// playwright-core) against a real normlabd with real runs:
//  - a small finished sweep (2 norm types × 2 placements × 2 seeds), a 48-run sweep of 1000 steps,
//    a small vit run on Fashion-MNIST, and a live run that is still training;
//  - the lists the views offer (arches, norm types) come from GET /api/v1/schema; a vit run shows
//    its accuracy chart with points, and the arch filter narrows the table to it;
//  - opens every view, checks the charts hold the expected series and points, the variance-vs-depth
//    chart has one point per layer, a filter narrows the table, the live run's step advances;
//  - no request fetches more points than its chart has pixels (the server downsamples);
//  - every control has an accessible name; 1280×800 and 1920×1080 without horizontal scrolling;
//  - a DyT run at the default model and training settings ends dead (run health, on_dead=stop)
//    within 100 steps: the runs table and the run view show the badge and the engine's reason,
//    and its loss chart draws the corpus's unigram entropy as a reference line;
//  - prints how long the 48-run compare page takes to load and draw (a figure, not an assertion).
// Screenshots go to tests/out/browser/. Ends with "browser: N passed, N failed".
import { launchDaemon, writeCorpus } from './harness.mjs';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';

const root = resolve(new URL('../..', import.meta.url).pathname);
const require = createRequire(join(root, 'web/package.json'));
const { chromium } = require('playwright-core');
const BIN = resolve(root, process.env.NORMLAB_BIN || 'bin');
const OUT = join(root, 'tests/out/browser');
const TOKEN = 'tok-browser-0123456789abcdef';
let pass = 0, fail = 0;
const check = (ok, what) => { if (ok) pass++; else { fail++; console.error(`FAIL: ${what}`); } };

const tmp = mkdtempSync(join(tmpdir(), 'nl_browser_'));
mkdirSync(OUT, { recursive: true });
writeFileSync(join(tmp, 'tokens'), `${TOKEN} tester admin\n`, { mode: 0o600 });
// a corpus of our own
writeCorpus(tmp, 12345);

let daemon, port;
async function startDaemon() {
	({ daemon, port } = await launchDaemon(BIN, tmp, root, []));
}
const api = async (method, path, body) => {
	const res = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, {
		method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
		body: body ? JSON.stringify(body) : undefined,
	});
	return { status: res.status, json: await res.json().catch(() => null) };
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitSweep(id, n, seconds) {
	const until = Date.now() + seconds * 1000;
	while (Date.now() < until) {
		const { json } = await api('GET', `/sweeps/${id}`);
		if (json && json.counts && json.counts.succeeded >= n) return true;
		await sleep(250);
	}
	return false;
}

const tiny = (steps, extra = {}) => ({
	model: { n_layer: 3, d_model: 16, n_head: 2, seq_len: 16 }, data: { path: 'corpus.txt' },
	// tiny DyT/Derf runs go dead (run health) within a few dozen steps: these train on, marked
	train: { steps, batch_size: 2, warmup: 10, lr: 0.003, on_dead: 'continue' },
	probe: { every: 10, depth_every: 50, samples_every: 500, samples: 256, val_every: 100 }, ...extra,
});

let browser;
try {
	await startDaemon();
	// 1. the small finished sweep
	const small = await api('POST', '/sweeps', { base: tiny(200), name: 'small',
		grid: { 'norm.type': ['layernorm', 'dyt'], 'norm.placement': ['pre', 'post'] }, seeds: [1, 2] });
	check(small.status === 201, `small sweep submitted (${small.status})`);
	// a vit run: 7×7 patches keep it tiny; accuracy on the test set every 20 steps
	const vit = await api('POST', '/experiments', { name: 'vit-tiny',
		model: { arch: 'vit', n_layer: 2, d_model: 16, n_head: 2, patch: 7 },
		train: { steps: 60, batch_size: 8, warmup: 5, lr: 0.003 },
		probe: { every: 5, depth_every: 20, samples_every: 60, samples: 64, val_every: 20, val_batches: 1 } });
	check(vit.status === 201, `vit run submitted (${vit.status} ${JSON.stringify(vit.json).slice(0, 160)})`);
	// DyT at today's defaults (L=4, d=128, T=128, B=16, lr 1e-3 with warmup): dead, and stopped
	const dead = await api('POST', '/experiments', { name: 'dyt-defaults', norm: { type: 'dyt' },
		data: { path: 'corpus.txt' }, train: { steps: 300 }, probe: { samples: 256 } });
	check(dead.status === 201, `default DyT run submitted (${dead.status})`);
	// 2. the 48-run sweep of 1000 steps
	const big = await api('POST', '/sweeps', { base: tiny(1000), name: 'big48',
		grid: { 'norm.type': ['layernorm', 'rmsnorm', 'dyt', 'derf'], 'norm.placement': ['pre', 'post', 'peri'] },
		seeds: [1, 2, 3, 4] });
	check(big.status === 201 && big.json.count === 48, `48-run sweep submitted (${JSON.stringify(big.json).slice(0, 120)})`);
	check(await waitSweep(small.json.id, 8, 120), 'small sweep finished');
	check(await waitSweep(big.json.id, 48, 300), '48-run sweep finished');
	// 3. a live run that keeps training while the browser looks
	const live = await api('POST', '/experiments', { ...tiny(1000000), name: 'live-run' });
	check(live.status === 201, 'live run submitted');
	const liveId = live.json.id;
	const smallCells = (await api('GET', `/sweeps/${small.json.id}`)).json.cells;
	const runId = smallCells[0].id;

	browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'] });
	const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
	const errors = [];
	page.on('pageerror', (e) => errors.push(String(e)));
	// Chrome logs every 4xx answer as a console error; the dry run with a bad spec gets one on
	// purpose, so only script errors count.
	page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
	await page.addInitScript((t) => localStorage.setItem('normlab.token', t), TOKEN);
	const base = `http://127.0.0.1:${port}`;

	// ---- Runs ----
	await page.goto(`${base}/#/runs`);
	await page.waitForSelector('#runs-table tbody tr[data-id]', { timeout: 15000 });
	const rowsAll = await page.locator('#runs-table tbody tr[data-id]').count();
	check(rowsAll >= 50, `runs table lists the runs (${rowsAll} rows)`);
	await page.selectOption('#filter-type', 'dyt');
	await page.waitForFunction(() => {
		const rows = [...document.querySelectorAll('#runs-table tbody tr[data-id]')];
		return rows.length > 0 && rows.every((r) => r.textContent.includes('dyt'));
	}, null, { timeout: 10000 }).catch(() => {});
	const rowsDyt = await page.locator('#runs-table tbody tr[data-id]').count();
	check(rowsDyt > 0 && rowsDyt < rowsAll, `the norm-type filter narrows the table (${rowsAll} → ${rowsDyt})`);
	await page.screenshot({ path: join(OUT, 'runs-1280.png'), fullPage: false });
	await page.selectOption('#filter-type', '');
	// the arch filter's options are the schema's arches; vit narrows the table to the vit run
	const archOpts = await page.$$eval('#filter-arch option', (os) => os.map((o) => o.value).filter(Boolean));
	check(archOpts.join(',') === 'gpt,llama,vit', `arch filter offers the schema's arches (${archOpts})`);
	await page.selectOption('#filter-arch', 'vit');
	await page.waitForFunction(() => {
		const rows = [...document.querySelectorAll('#runs-table tbody tr[data-id]')];
		return rows.length === 1 && rows[0].querySelector('[data-col="arch"]').textContent === 'vit';
	}, null, { timeout: 10000 }).catch(() => {});
	const vitRows = await page.$$eval('#runs-table tbody tr[data-id]', (rs) => rs.map((r) => r.dataset.id));
	check(vitRows.length === 1 && vitRows[0] === String(vit.json.id), `arch=vit lists the vit run only (${vitRows})`);
	await page.selectOption('#filter-arch', '');
	// the live run's step advances in the table without a reload
	await page.waitForSelector(`#runs-table tr[data-id="${liveId}"]`, { timeout: 15000 });
	const rowStep = async () => Number((await page.locator(`#runs-table tr[data-id="${liveId}"]`).getAttribute('data-step')) ||
		(await page.locator(`#runs-table tr[data-id="${liveId}"] [data-col="step"]`).textContent().catch(() => '0')).replace(/[^0-9]/g, ''));
	const s0 = await rowStep();
	await sleep(2500);
	const s1 = await rowStep();
	check(s1 > s0, `live run's step advances in the table (${s0} → ${s1})`);

	// ---- Run ----
	await page.goto(`${base}/#/run/${runId}`);
	await page.waitForSelector('[data-chart="loss"][data-points]', { timeout: 15000 });
	const attr = async (name, a) => page.getAttribute(`[data-chart="${name}"]`, a).catch(() => null);
	check(Number(await attr('loss', 'data-series')) === 3, `loss chart has 3 series (loss, val loss, unigram entropy): ${await attr('loss', 'data-series')}`);
	check(Number(await attr('loss', 'data-points')) === 21, `loss chart has 21 points (step 1 and every 10 to 200): ${await attr('loss', 'data-points')}`);
	await page.waitForSelector('[data-chart="variance-depth"][data-points]', { timeout: 10000 });
	check(Number(await attr('variance-depth', 'data-points')) === 3, `variance vs depth: one point per layer (3): ${await attr('variance-depth', 'data-points')}`);
	for (const name of ['lr', 'grad_norm', 'grad-depth', 'massive-depth', 'kurtosis-depth', 'angle-depth', 'heatmap', 'scurve'])
		check(await page.locator(`[data-chart="${name}"]`).count() === 1, `run view has the ${name} chart`);
	await page.waitForTimeout(500);
	await page.screenshot({ path: join(OUT, 'run-1280.png'), fullPage: true });
	// DyT run: α and saturation over time
	const dytCell = smallCells.find((c) => c.cell >= 4) || smallCells[4];
	await page.goto(`${base}/#/run/${dytCell.id}`);
	await page.waitForSelector('[data-chart="alpha-time"]', { timeout: 15000 }).catch(() => {});
	check(await page.locator('[data-chart="alpha-time"]').count() === 1, 'a DyT run shows α over time');
	// the vit run: its accuracy chart (train and test accuracy) with points, and its epochs
	const vitDone = async () => (await api('GET', `/experiments/${vit.json.id}`)).json.status === 'succeeded';
	for (let i = 0; i < 240 && !(await vitDone()); i++) await sleep(250);
	check(await vitDone(), 'the vit run succeeded');
	await page.goto(`${base}/#/run/${vit.json.id}`);
	await page.waitForSelector('[data-chart="accuracy"][data-points]', { timeout: 15000 }).catch(() => {});
	check(Number(await attr('accuracy', 'data-series')) === 2, `vit accuracy chart has 2 series (train_acc, val_acc): ${await attr('accuracy', 'data-series')}`);
	check(Number(await attr('accuracy', 'data-points')) >= 10, `vit accuracy chart has points (train_acc every 5 of 60 steps): ${await attr('accuracy', 'data-points')}`);
	await page.waitForFunction(() => /\d/.test((document.getElementById('run-epochs') || {}).textContent || ''), null, { timeout: 5000 }).catch(() => {});
	const epochs = Number(await page.textContent('#run-epochs').catch(() => 'NaN'));
	check(epochs > 0 && epochs < 1, `vit run shows its epochs (${epochs}: 60 steps × 8 of 60000 images)`);
	await page.screenshot({ path: join(OUT, 'run-vit-1280.png'), fullPage: true });
	// the dead DyT run: stopped by health within 100 steps, with the reason on the page
	const deadExp = async () => (await api('GET', `/experiments/${dead.json.id}`)).json;
	for (let i = 0; i < 480 && !['dead', 'succeeded', 'failed'].includes((await deadExp()).status); i++) await sleep(250);
	const dj = await deadExp();
	check(dj.status === 'dead' && dj.step <= 100 && dj.health.status === 'dead' && /saturated|gradient/.test(dj.health.reason || ''),
		`default DyT run ends dead within 100 steps (${dj.status} at step ${dj.step}: ${JSON.stringify(dj.health)})`);
	await page.goto(`${base}/#/run/${dead.json.id}`);
	await page.waitForSelector('#run-health:not([hidden])', { timeout: 15000 }).catch(() => {});
	const healthText = await page.textContent('#run-health').catch(() => '');
	check(/dead @ step \d+/.test(healthText) && healthText.includes(dj.health.reason || '(none)'),
		`run view shows the dead badge and the reason (${healthText})`);
	await page.waitForSelector('[data-chart="loss"][data-points]', { timeout: 15000 }).catch(() => {});
	check(Number(await attr('loss', 'data-series')) === 3, `the loss chart has loss, val_loss and the unigram entropy line (${await attr('loss', 'data-series')})`);
	await page.screenshot({ path: join(OUT, 'run-dead-1280.png'), fullPage: true });
	await page.goto(`${base}/#/runs`);
	await page.waitForSelector(`#runs-table tbody tr[data-id="${dead.json.id}"]`, { timeout: 15000 }).catch(() => {});
	const rowBadge = await page.textContent(`#runs-table tbody tr[data-id="${dead.json.id}"] .status-cell`).catch(() => '');
	check(/dead @ step \d+/.test(rowBadge), `the runs table shows the dead badge (${rowBadge})`);
	const rowTitle = await page.getAttribute(`#runs-table tbody tr[data-id="${dead.json.id}"] .status-dead`, 'title').catch(() => '');
	check(rowTitle === dj.error, `the badge's tooltip is the reason (${rowTitle})`);
	// a gpt run has no accuracy chart
	await page.goto(`${base}/#/run/${runId}`);
	await page.waitForSelector('[data-chart="loss"][data-points]', { timeout: 15000 });
	check(await page.locator('[data-chart="accuracy"]').count() === 0, 'a gpt run has no accuracy chart');
	// the live run: the step on screen advances
	await page.goto(`${base}/#/run/${liveId}`);
	await page.waitForSelector('#run-step', { timeout: 15000 });
	const st0 = Number((await page.textContent('#run-step')).replace(/[^0-9]/g, ''));
	await sleep(2500);
	const st1 = Number((await page.textContent('#run-step')).replace(/[^0-9]/g, ''));
	check(st1 > st0, `live run view: the step advances (${st0} → ${st1})`);

	// ---- Compare: the 48-run sweep, grouped by norm type ----
	await page.goto(`${base}/#/runs`);
	const t0 = Date.now();
	await page.goto(`${base}/#/compare?sweep=${big.json.id}&group_by=norm.type`);
	await page.waitForFunction(() => window.normlabTimings && window.normlabTimings.drawn, null, { timeout: 30000 }).catch(() => {});
	const timing = await page.evaluate(() => window.normlabTimings || null);
	const wall = Date.now() - t0;
	if (timing)
		console.log(`figure: 48-run sweep compare page: first draw ${Math.round(timing.drawn - timing.started)} ms after the view started, ${wall} ms from navigation`);
	check(timing && timing.drawn, 'compare view reports when it has drawn');
	await page.waitForSelector('[data-chart="compare-metric"][data-series]', { timeout: 10000 }).catch(() => {});
	const cmpSeries = Number(await attr('compare-metric', 'data-series'));
	check(cmpSeries >= 4, `compare chart has a series per norm type (${cmpSeries})`);
	check(await page.locator('#compare-final tr').count() >= 4, 'final-metrics table per group');
	await page.screenshot({ path: join(OUT, 'compare-1280.png'), fullPage: true });

	// ---- Submit: a dry run with an error shows the pointer ----
	await page.goto(`${base}/#/submit`);
	await page.waitForSelector('textarea', { timeout: 10000 });
	await page.fill('textarea', '{"norm":{"type":"dtyt"}}');
	await page.getByRole('button', { name: /dry run/i }).click();
	await page.waitForFunction(() => document.body.innerText.includes('/norm/type'), null, { timeout: 10000 }).catch(() => {});
	check(await page.evaluate(() => document.body.innerText.includes('/norm/type')), 'dry run shows the error pointer /norm/type');
	await page.screenshot({ path: join(OUT, 'submit-1280.png') });
	// a template per arch: the vit one dry-runs clean
	const tmplOpts = await page.$$eval('#template-arch option', (os) => os.map((o) => o.value));
	check(tmplOpts.join(',') === 'gpt,llama,vit', `submit offers a template per arch (${tmplOpts})`);
	await page.click('#reset-example');
	await page.selectOption('#template-arch', 'vit');
	check((await page.inputValue('#spec-input')).includes('"arch": "vit"'), 'the vit template names its arch');
	await page.click('#dry-run');
	await page.waitForSelector('#submit-result .ok-box', { timeout: 10000 }).catch(() => {});
	check(await page.locator('#submit-result .ok-box').count() === 1, 'the vit template passes a dry run');

	// ---- no request fetched more points than its chart asked for (= its pixel width) ----
	const reqs = await page.evaluate(() => window.normlabRequests || []);
	const series = reqs.filter((r) => r.asked !== null && r.points !== null);
	const over = series.filter((r) => r.points > r.asked);
	check(series.length > 0 && over.length === 0, `series requests within their bucket count (${series.length} checked, ${over.length} over)`);

	// ---- accessibility basics and the two window sizes ----
	for (const [w, h] of [[1280, 800], [1920, 1080]]) {
		await page.setViewportSize({ width: w, height: h });
		for (const view of ['#/runs', `#/run/${runId}`, `#/compare?ids=${smallCells.map((c) => c.id).join(',')}`, '#/submit']) {
			await page.goto(`${base}/${view}`);
			await page.waitForTimeout(1200);
			const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
				.filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
					!el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
				.map((el) => el.outerHTML.slice(0, 80)));
			check(unlabeled.length === 0, `${view} at ${w}×${h}: every control has a label ${unlabeled.join(' | ')}`);
			const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
			check(wide <= 1, `${view} at ${w}×${h}: no horizontal scrolling (${wide}px)`);
		}
		await page.goto(`${base}/#/runs`);
		await page.waitForTimeout(800);
		await page.screenshot({ path: join(OUT, `runs-${w}.png`) });
	}
	check(errors.length === 0, `no script errors in the page: ${errors.slice(0, 3).join(' | ')}`);
	await api('POST', `/experiments/${liveId}/cancel`);
} catch (e) {
	fail++;
	console.error(`FAIL: ${e && e.stack ? e.stack : e}`);
} finally {
	if (browser) await browser.close();
	if (daemon && daemon.exitCode === null) {
		daemon.kill('SIGTERM');
		await new Promise((r) => daemon.once('exit', r));
	}
	if (!fail) rmSync(tmp, { recursive: true, force: true });
	console.log(`screenshots in ${OUT}`);
	console.log(`browser: ${pass} passed, ${fail} failed`);
	process.exit(fail ? 1 : 0);
}
