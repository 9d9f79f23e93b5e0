// private.mjs — the dashboard against a normlabd whose reads need a token (reads_open = false),
// in Debian's chromium driven by playwright-core:
//  - without a token the runs table stays empty (the API answers 401);
//  - after alice enters her token, the table lists her runs and not bob's, the live indicator
//    says live, and her running run's step advances from the event stream, which the browser
//    opens with a session cookie (EventSource cannot send the token) that page scripts cannot read;
//  - a token change (to bob's) shows bob's runs and not alice's.
// Ends with "private: N passed, N failed".
import { launchDaemon, writeCorpus } from './harness.mjs';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';

const root = resolve(new URL('../..', import.meta.url).pathname);
const require = createRequire(join(root, 'web/package.json'));
const { chromium } = require('playwright-core');
const BIN = resolve(root, process.env.NORMLAB_BIN || 'bin');
const ALICE = 'tok-alice-private-0123456789';
const BOB = 'tok-bob-private-0123456789ab';
let pass = 0, fail = 0;
const check = (ok, what) => { if (ok) pass++; else { fail++; console.error(`FAIL: ${what}`); } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const tmp = mkdtempSync(join(tmpdir(), 'nl_private_'));
writeFileSync(join(tmp, 'tokens'), `${ALICE} alice user\n${BOB} bob user\n`, { mode: 0o600 });
writeCorpus(tmp, 4242);

let daemon, port;
async function startDaemon() {
	({ daemon, port } = await launchDaemon(BIN, tmp, root, ['--reads_open', 'false']));
}
const api = async (token, method, path, body) => {
	const res = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, {
		method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
		body: body ? JSON.stringify(body) : undefined,
	});
	return { status: res.status, json: await res.json().catch(() => null) };
};
const spec = (name, steps) => ({
	name, model: { n_layer: 2, d_model: 16, n_head: 2, seq_len: 16 }, data: { path: 'corpus.txt' },
	train: { steps, batch_size: 2, warmup: 10, lr: 0.003 },
	probe: { every: 10, depth_every: 100, samples_every: 1000, samples: 64, val_every: 100 },
});

let browser;
try {
	await startDaemon();
	const live = await api(ALICE, 'POST', '/experiments', spec('alice-live', 1000000));
	check(live.status === 201, `alice's live run submitted (${live.status})`);
	const bobRun = await api(BOB, 'POST', '/experiments', spec('bob-private', 50));
	check(bobRun.status === 201, `bob's run submitted (${bobRun.status})`);
	const aliceId = live.json.id, bobId = bobRun.json.id;
	check((await fetch(`http://127.0.0.1:${port}/api/v1/experiments`)).status === 401, 'reads need a token');

	browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'] });
	const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
	const errors = [];
	page.on('pageerror', (e) => errors.push(String(e)));
	const base = `http://127.0.0.1:${port}`;

	// no token: nothing listed
	await page.goto(`${base}/#/runs`);
	await sleep(1500);
	check(await page.locator('#runs-table tbody tr[data-id]').count() === 0, 'without a token no run is listed');

	// alice enters her token
	await page.fill('#token-input', ALICE);
	await page.press('#token-input', 'Enter');
	await page.waitForSelector(`#runs-table tr[data-id="${aliceId}"]`, { timeout: 15000 });
	check(await page.locator(`#runs-table tr[data-id="${bobId}"]`).count() === 0, "alice's table does not list bob's run");
	check(!(await page.evaluate(() => document.body.innerText)).includes('bob-private'), "bob's run name is nowhere on alice's page");
	await page.waitForSelector('#live-status[data-state="live"]', { timeout: 15000 }).catch(() => {});
	check(await page.getAttribute('#live-status', 'data-state') === 'live', `the event stream is live (${await page.getAttribute('#live-status', 'data-state')})`);
	const rowStep = async (id) => Number((await page.locator(`#runs-table tr[data-id="${id}"]`).getAttribute('data-step')) || 0);
	const s0 = await rowStep(aliceId);
	await sleep(3000);
	const s1 = await rowStep(aliceId);
	check(s1 > s0, `alice's live run's step advances in the table (${s0} → ${s1})`);
	const ev = await page.evaluate(() => window.normlabLive.lastEvent());
	check(ev && ev.kind === 'experiment.progress' && ev.data.id === aliceId,
		`the update came from the event stream (${JSON.stringify(ev).slice(0, 120)})`);
	check(!(await page.evaluate(() => document.cookie)).includes('normlab_session'), 'page scripts cannot read the session cookie');

	// the token changes to bob's: his run, not hers
	await page.fill('#token-input', BOB);
	await page.press('#token-input', 'Enter');
	await page.waitForSelector(`#runs-table tr[data-id="${bobId}"]`, { timeout: 15000 });
	await sleep(500);
	check(await page.locator(`#runs-table tr[data-id="${aliceId}"]`).count() === 0, "after the switch, bob's table does not list alice's run");
	await page.waitForSelector('#live-status[data-state="live"]', { timeout: 15000 }).catch(() => {});
	check(await page.getAttribute('#live-status', 'data-state') === 'live', 'the stream is live again with bob\'s session');
	check(errors.length === 0, `no script errors in the page: ${errors.slice(0, 3).join(' | ')}`);
	await api(ALICE, 'POST', `/experiments/${aliceId}/cancel`);
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
	console.log(`private: ${pass} passed, ${fail} failed`);
	process.exit(fail ? 1 : 0);
}
