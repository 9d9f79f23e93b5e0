// report.mjs — a sweep's report in a real browser (Debian's chromium via playwright-core) against
// a real normlabd: a small recipe sweep (pre vs lns × 2 seeds, tiny model) with checks that hold,
// one that fails and figures of every kind; the Sweeps page links to its report; the report shows
// each check with its status and numbers as the API answered, one chart per figure with a series
// per group (a depth_time and an scurve chart per group), and "Export HTML" downloads one
// self-contained page holding every figure as an inline PNG and the check table. Every control
// has an accessible name; no horizontal scrolling at 1280×800.
// Screenshots go to tests/out/browser/. Ends with "report: N passed, N failed".
import { launchDaemon, writeCorpus } from './harness.mjs';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';

const root = resolve(new URL('../..', import.meta.url).pathname);
const require = createRequire(join(root, 'web/package.json'));
const { chromium } = require('playwright-core');
const BIN = resolve(root, process.env.NORMLAB_BIN || 'bin');
const OUT = join(root, 'tests/out/browser');
const TOKEN = 'tok-report-0123456789abcdef';
let pass = 0, fail = 0;
const check = (ok, what) => { if (ok) pass++; else { fail++; console.error(`FAIL: ${what}`); } };

const tmp = mkdtempSync(join(tmpdir(), 'nl_report_'));
mkdirSync(OUT, { recursive: true });
writeFileSync(join(tmp, 'tokens'), `${TOKEN} tester admin\n`, { mode: 0o600 });
writeCorpus(tmp, 777);

const sweep = {
	name: 'report-ui',
	base: {
		model: { n_layer: 4, d_model: 16, n_head: 2, seq_len: 16 }, norm: { type: 'dyt' }, data: { path: 'corpus.txt' },
		train: { steps: 120, batch_size: 2, warmup: 10, lr: 0.003, on_dead: 'continue' },   // tiny DyT goes dead: train on
		probe: { every: 5, depth_every: 20, samples_every: 60, samples: 128, val_every: 60 },
	},
	grid: { 'norm.placement': ['pre', 'lns'] },
	seeds: [1, 2],
	recipe: {
		claim: 'A test claim: LNS keeps the last block\'s variance below Pre-LN\'s.',
		paper: 'normlab browser test', figure: 'none',
		checks: [
			{ check: 'value', metric: 'loss', group: {}, op: '<', value: 100, text: 'the loss is finite and below 100' },
			{ check: 'ratio', metric: 'resid.var', of: 'depth[-1]/depth[0]', group: { 'norm.placement': 'pre' }, op: '>=', value: 1e9,
				text: 'an absurd bar that must fail' },
			{ check: 'compare', metric: 'resid.var', of: 'depth[-1]', group: { 'norm.placement': 'lns' }, than: { 'norm.placement': 'pre' }, op: '<',
				text: 'LNS below Pre-LN' },
		],
		figures: [
			{ kind: 'series', metric: 'loss', title: 'Training loss' },
			{ kind: 'depth', metric: 'resid.var', steps: 3, log: true, title: 'Variance against depth' },
			{ kind: 'depth_time', metric: 'norm1.alpha', title: 'alpha over time' },
			{ kind: 'scurve', site: 'blocks.3.norm1', title: 'S-curve' },
		],
	},
};

let daemon, port, browser;
const api = async (method, path, body) => {
	const res = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, {
		method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
		body: body ? JSON.stringify(body) : undefined,
	});
	return { status: res.status, json: await res.json().catch(() => null) };
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
	({ daemon, port } = await launchDaemon(BIN, tmp, root, []));
	const sub = await api('POST', '/sweeps', sweep);
	check(sub.status === 201, `recipe sweep submitted (${sub.status} ${JSON.stringify(sub.json).slice(0, 200)})`);
	const id = sub.json.id;
	const until = Date.now() + 120000;
	for (;;) {
		const { json } = await api('GET', `/sweeps/${id}`);
		if (json && json.counts && json.counts.succeeded >= 4) break;
		if (Date.now() > until) { check(false, 'the sweep finished'); break; }
		await sleep(250);
	}
	const rep = (await api('GET', `/sweeps/${id}/report`)).json;
	check(rep && rep.checks.length === 3 && rep.summary.not_yet === 0, `the API decided every check (${JSON.stringify(rep && rep.summary)})`);

	browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'] });
	const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
	const page = await context.newPage();
	const errors = [];
	page.on('pageerror', (e) => errors.push(String(e)));
	page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
	await page.addInitScript((t) => localStorage.setItem('normlab.token', t), TOKEN);
	const base = `http://127.0.0.1:${port}`;

	// the Sweeps page opens the report
	await page.goto(`${base}/#/sweeps`);
	await page.waitForSelector(`#sweeps-table tr[data-sweep="${id}"] a.report-link`, { timeout: 15000 });
	await page.click(`#sweeps-table tr[data-sweep="${id}"] a.report-link`);
	await page.waitForSelector('#report-checks tbody tr[data-status]', { timeout: 15000 });
	check(page.url().endsWith(`#/sweeps/${id}/report`), `the link leads to the report (${page.url()})`);
	await page.waitForFunction(() => window.normlabTimings && window.normlabTimings.view === 'report' && window.normlabTimings.drawn, null, { timeout: 15000 }).catch(() => {});

	// the checks, as the API answered them, with their numbers
	const rows = await page.$$eval('#report-checks tbody tr', (rs) => rs.map((r) => ({
		status: r.dataset.status, badge: r.querySelector('.badge').textContent, reason: r.querySelector('.check-reason').textContent,
		text: r.cells[2].textContent })));
	check(rows.length === 3, `three checks listed (${rows.length})`);
	rep.checks.forEach((c, i) => {
		const r = rows[i] || {};
		check(r.status === c.status && r.reason === c.reason && r.text.includes(c.text),
			`check ${i + 1} shows ${c.status} "${c.reason}" (page: ${r.status} "${r.reason}")`);
	});
	check(rows[1] && rows[1].status === 'fails' && rows[1].badge === 'fails', 'the absurd bar fails');
	check(rows[0] && rows[0].status === 'holds' && /\d/.test(rows[0].reason), `the loss check holds with a number (${rows[0] && rows[0].reason})`);
	const summary = await page.textContent('#report-summary');
	check(summary.includes(`${rep.summary.holds} hold`) && summary.includes(`${rep.summary.fails} fail`), `summary line (${summary})`);
	check((await page.textContent('#report-claim')).includes('LNS keeps'), 'the claim is shown');

	// the figures: one chart each; a series per group; small multiples per group
	const figs = await page.$$eval('[data-chart^="report-fig-"]:not(.nl-card)', (bs) => bs.map((b) => ({
		name: b.dataset.chart, kind: b.dataset.kind, series: Number(b.getAttribute('data-series')), points: Number(b.getAttribute('data-points')) })));
	check(figs.length === 4, `four figures drawn (${figs.map((f) => f.name)})`);
	const byKind = Object.fromEntries(figs.map((f) => [f.kind, f]));
	check(byKind.series && byKind.series.series === 2 && byKind.series.points === rep.figures[0].groups[0].step.length,
		`loss figure: a line per group with every step (${JSON.stringify(byKind.series)})`);
	check(byKind.depth && byKind.depth.series === 6 && byKind.depth.points === 4,
		`depth figure: 2 groups × 3 steps, one point per block (${JSON.stringify(byKind.depth)})`);
	check(byKind.depth_time && byKind.depth_time.series === 2, `alpha figure: a chart per group (${JSON.stringify(byKind.depth_time)})`);
	check(byKind.scurve && byKind.scurve.series === 2 && byKind.scurve.points === 128, `S-curve: a scatter per group with every sample (${JSON.stringify(byKind.scurve)})`);
	await page.screenshot({ path: join(OUT, 'report-1280.png'), fullPage: true });

	// export: one self-contained page
	const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15000 }), page.click('#report-export')]);
	const file = join(tmp, 'export.html');
	await dl.saveAs(file);
	const html = readFileSync(file, 'utf8');
	const pngs = (html.match(/<img [^>]*src="data:image\/png;base64,[A-Za-z0-9+/=]{200,}"/g) || []).length;
	check(pngs === 4, `the export holds the 4 figures as inline PNGs (${pngs})`);
	check(!/<script|<link|src="http|href="http/i.test(html), 'the export loads nothing from outside');
	check(rep.checks.every((c) => html.includes(c.reason.replace(/</g, '&lt;').replace(/>/g, '&gt;'))) && html.includes('class="fails"'),
		'the export holds every check with its numbers and status');
	writeFileSync(join(OUT, 'report-export.html'), html);

	// a sweep without a recipe: the default figures, no checks
	const plain = await api('POST', '/sweeps', { base: sweep.base, grid: { 'norm.type': ['layernorm', 'dyt'] }, name: 'plain' });
	check(plain.status === 201, 'a plain sweep submitted');
	await page.goto(`${base}/#/sweeps/${plain.json.id}/report`);
	await page.waitForSelector('#report-claim', { timeout: 15000 });
	check((await page.textContent('#report-claim')).includes('without a recipe'), 'a sweep without a recipe says so');
	check(await page.locator('[data-chart^="report-fig-"]:not(.nl-card)').count() === 3, 'and draws the three default figures');

	// controls have names; no horizontal scrolling
	await page.goto(`${base}/#/sweeps/${id}/report`);
	await page.waitForSelector('#report-checks tbody tr', { timeout: 15000 });
	const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
		.filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
			!el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
		.map((el) => el.outerHTML.slice(0, 80)));
	check(unlabeled.length === 0, `every control has a label ${unlabeled.join(' | ')}`);
	const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
	check(wide <= 1, `no horizontal scrolling (${wide}px)`);
	check(errors.length === 0, `no script errors in the page: ${errors.slice(0, 3).join(' | ')}`);
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
	console.log(`report: ${pass} passed, ${fail} failed`);
	process.exit(fail ? 1 : 0);
}
