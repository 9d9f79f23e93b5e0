// app.js — the dashboard shell: hash router, nav state, document title, the token field, the
// live-connection indicator and the alert area for API errors.
//
// Routes:  #/runs[?sweep=&status=&arch=&type=&placement=&q=&sort=&dir=]   (default)
//          #/run/<id>                                               (run.js: renderRun)
//          #/compare?ids=1,2,3 | #/compare?sweep=5                  (compare.js: renderCompare)
//          #/submit                                                 (submit.js: renderSubmit)
//          #/sweeps                                                 (report.js: renderSweeps)
//          #/sweeps/<id>/report                                     (report.js: renderReport)
// A view's render function may return (or resolve to) a cleanup function; it runs before the
// next view renders. View modules load on first use (dynamic import), so a view that fails to
// load shows an error without taking the shell down.

import { ApiError, getToken, setToken } from './api.js';
import { onStatus, connect, reconnect } from './live.js';
import { el, errorAlert, loadSchema } from './util.js';

const ROUTES = [
	{ name: 'runs', re: /^\/?(?:runs)?\/?$/, nav: 'runs',
		title: () => 'Runs',
		render: async (root, m, params) => (await import('./runs.js')).renderRuns(root, params) },
	{ name: 'run', re: /^\/runs?\/(\d+)\/?$/, nav: 'runs',
		title: (m) => `Run ${m[1]}`,
		render: async (root, m) => (await import('./run.js')).renderRun(root, Number(m[1])) },
	{ name: 'compare', re: /^\/compare\/?$/, nav: 'compare',
		title: (m, params) => params.get('sweep') ? `Compare sweep ${params.get('sweep')}` : 'Compare',
		render: async (root, m, params) => (await import('./compare.js')).renderCompare(root, params) },
	{ name: 'sweeps', re: /^\/sweeps\/?$/, nav: 'sweeps',
		title: () => 'Sweeps',
		render: async (root) => (await import('./report.js')).renderSweeps(root) },
	{ name: 'report', re: /^\/sweeps?\/(\d+)\/report\/?$/, nav: 'sweeps',
		title: (m) => `Report, sweep ${m[1]}`,
		render: async (root, m) => (await import('./report.js')).renderReport(root, Number(m[1])) },
	{ name: 'submit', re: /^\/submit\/?$/, nav: 'submit',
		title: () => 'Submit',
		render: async (root) => (await import('./submit.js')).renderSubmit(root) },
];

let cleanup = null;
let generation = 0;
let firstRender = true;

function parseHash() {
	let h = location.hash.replace(/^#/, '');
	const q = h.indexOf('?');
	const path = q < 0 ? h : h.slice(0, q);
	const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
	return { path: path || '/runs', params };
}

function setNav(active) {
	for (const a of document.querySelectorAll('.app-nav a[data-nav]')) {
		if (a.dataset.nav === active) a.setAttribute('aria-current', 'page');
		else a.removeAttribute('aria-current');
	}
}

// Shows an error in the shell's alert area (above the view). Returns the alert element.
export function showError(err, opts) {
	const box = errorAlert(err, opts);
	document.getElementById('alerts').appendChild(box);
	return box;
}

function clearAlerts() { document.getElementById('alerts').replaceChildren(); }

function runCleanup() {
	const c = cleanup;
	cleanup = null;
	if (typeof c === 'function') {
		try { c(); } catch (e) { console.error('view cleanup failed', e); }
	}
}

async function route() {
	const gen = ++generation;
	runCleanup();
	clearAlerts();
	const { path, params } = parseHash();
	const view = document.getElementById('view');
	const root = el('div', { class: 'view-root' });
	view.replaceChildren(root);

	let r = null, m = null;
	for (const cand of ROUTES) {
		m = cand.re.exec(path);
		if (m) { r = cand; break; }
	}
	if (!r) {
		setNav(null);
		document.title = 'Not found · normlab';
		view.dataset.view = 'notfound';
		root.append(el('h1', null, 'Not found'),
			el('p', null, 'No page at ', el('code', null, '#' + path), '. ', el('a', { href: '#/runs' }, 'Go to the runs')));
		return;
	}
	setNav(r.nav);
	view.dataset.view = r.name;
	view.setAttribute('aria-busy', 'true');
	document.title = `${r.title(m, params)} · normlab`;
	try {
		const ret = await r.render(root, m, params);
		if (gen !== generation) {          // the user navigated on while this view loaded
			if (typeof ret === 'function') { try { ret(); } catch (e) { console.error(e); } }
			return;
		}
		if (typeof ret === 'function') cleanup = ret;
	} catch (err) {
		if (gen !== generation) return;
		console.error(err);
		root.append(errorAlert(err, {
			title: err instanceof ApiError ? undefined : `Could not show this page (${r.name})`,
			dismissible: false }));
	} finally {
		if (gen === generation) view.removeAttribute('aria-busy');
	}
	if (gen === generation && !firstRender) {
		// move focus to the new view's heading so screen readers announce the page change
		const h = root.querySelector('h1');
		const target = h || view;
		if (h && !h.hasAttribute('tabindex')) h.setAttribute('tabindex', '-1');
		if (!document.activeElement || document.activeElement === document.body ||
		    !root.contains(document.activeElement))
			target.focus({ preventScroll: true });
	}
	firstRender = false;
}

function setupToken() {
	const form = document.getElementById('token-form');
	const input = document.getElementById('token-input');
	const note = document.getElementById('token-state');
	input.value = getToken();
	const show = () => { note.textContent = getToken() ? 'saved' : 'not set'; };
	// a new token may see other runs (reads_open = false): new stream session, page drawn again
	const save = () => {
		const t = input.value.trim();
		if (t === getToken()) { show(); return; }
		setToken(t);
		show();
		reconnect();
		route();
	};
	show();
	input.addEventListener('change', save);
	form.addEventListener('submit', (e) => { e.preventDefault(); save(); });
	window.addEventListener('storage', (e) => {
		if (e.key === null || e.key === 'normlab.token') { input.value = getToken(); show(); reconnect(); }
	});
}

function setupLive() {
	const box = document.getElementById('live-status');
	const text = document.getElementById('live-text');
	const words = { idle: 'offline', connecting: 'connecting…', live: 'live',
		reconnecting: 'reconnecting…', unsupported: 'no live updates' };
	onStatus((s) => {
		box.dataset.state = s;
		text.textContent = words[s] || s;
		box.title = s === 'live' ? 'Receiving live events from normlabd'
			: s === 'reconnecting' ? 'The event stream dropped; reconnecting and resuming after the last event' : '';
	});
	connect();
}

// Errors thrown from a view's event handlers (a rejected promise nobody caught) still reach the
// user: API problems show in the alert area.
window.addEventListener('unhandledrejection', (e) => {
	const err = e.reason;
	if (err instanceof ApiError || (err && err.name === 'TypeError' && /fetch/i.test(err.message))) {
		showError(err);
		e.preventDefault();
	}
});

function start() {
	setupToken();
	setupLive();
	window.addEventListener('hashchange', route);
	// the views build their lists (norm types, placements, arches, statuses) from the schema
	loadSchema().catch((e) => showError(e, { title: 'Could not load the engine schema' })).finally(route);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
