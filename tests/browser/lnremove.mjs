// lnremove.mjs — LN removal in the dashboard (Debian's chromium, headless, driven by
// playwright-core) against a real normlabd:
//  - a parent run finishes; a child names it as "parent" and removes LayerNorm on a schedule;
//  - the child's run view links to its parent and its loss chart draws a vertical marker at each
//    removal step (the steps the daemon recorded, inside the plot area);
//  - the parent's run view lists the child.
// A screenshot goes to tests/out/browser/lnremove.png. Ends with "lnremove-browser: N passed, N failed".
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
const TOKEN = 'tok-lnremove-0123456789abcd';
let pass = 0, fail = 0;
const check = (ok, what) => { if (ok) pass++; else { fail++; console.error(`FAIL: ${what}`); } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const tmp = mkdtempSync(join(tmpdir(), 'nl_lnremove_browser_'));
mkdirSync(OUT, { recursive: true });
writeFileSync(join(tmp, 'tokens'), `${TOKEN} tester admin\n`, { mode: 0o600 });
writeCorpus(tmp, 777);

let daemon, port;
const api = async (method, path, body) => {
	const res = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, {
		method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
		body: body ? JSON.stringify(body) : undefined,
	});
	return { status: res.status, json: await res.json().catch(() => null) };
};
async function waitDone(id, seconds) {
	const until = Date.now() + seconds * 1000;
	while (Date.now() < until) {
		const { json } = await api('GET', `/experiments/${id}`);
		if (json && json.status === 'succeeded') return true;
		if (json && ['failed', 'diverged', 'cancelled'].includes(json.status)) return false;
		await sleep(200);
	}
	return false;
}

let browser;
try {
	({ daemon, port } = await launchDaemon(BIN, tmp, root, []));
	const parent = await api('POST', '/experiments', { name: 'ln-parent',
		model: { n_layer: 2, d_model: 16, n_head: 2, seq_len: 16 }, data: { path: 'corpus.txt' },
		train: { steps: 150, batch_size: 2, warmup: 10, lr: 0.003 },
		probe: { every: 10, depth_every: 50, samples_every: 500, samples: 64, val_every: 50 } });
	check(parent.status === 201, `parent submitted (${parent.status})`);
	check(await waitDone(parent.json.id, 120), 'parent finished');
	// ln2 at 5, 7; ln1 Q/K at 9, 11; ln1 V at 13, 16; ln_f at 19
	const child = await api('POST', '/experiments', { name: 'ln-free', parent: String(parent.json.id),
		data: { path: 'corpus.txt' }, train: { steps: 60, batch_size: 2, warmup: 5, lr: 0.001 },
		lnremove: { mode: 'gradual', start: 5, gap_ln2: 2, gap_ln1_qk: 2, gap_ln1_v: 3 },
		probe: { every: 5, depth_every: 20, samples_every: 500, samples: 64, val_every: 20 } });
	check(child.status === 201, `child submitted (${child.status} ${JSON.stringify(child.json).slice(0, 200)})`);
	check(await waitDone(child.json.id, 120), 'child finished');

	browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'] });
	const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
	const errors = [];
	page.on('pageerror', (e) => errors.push(String(e)));
	await page.addInitScript((t) => localStorage.setItem('normlab.token', t), TOKEN);
	const base = `http://127.0.0.1:${port}`;

	await page.goto(`${base}/#/run/${child.json.id}`);
	const loss = '[data-chart="loss"]';
	await page.waitForSelector(`${loss}[data-markers-drawn]`, { timeout: 20000 }).catch(() => {});
	const markers = await page.getAttribute(loss, 'data-markers');
	check(markers === '5,7,9,11,13,16,19', `the loss chart marks the removal steps (${markers})`);
	const drawn = await page.getAttribute(loss, 'data-markers-drawn');
	check(drawn === '7', `all 7 markers are drawn inside the plot (${drawn})`);
	check(await page.getAttribute('#run-parent', 'href') === `#/run/${parent.json.id}`, 'the child links to its parent');
	await page.screenshot({ path: join(OUT, 'lnremove.png'), fullPage: false });

	await page.goto(`${base}/#/run/${parent.json.id}`);
	await page.waitForSelector('.run-child', { timeout: 15000 }).catch(() => {});
	check(await page.locator(`.run-child[href="#/run/${child.json.id}"]`).count() === 1, 'the parent lists its child');
	check(await page.getAttribute(loss, 'data-markers') !== '5,7,9,11,13,16,19', 'the parent has no removal markers');
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
	console.log(`lnremove-browser: ${pass} passed, ${fail} failed`);
	process.exit(fail ? 1 : 0);
}
