// compare.js — the compare view (#/compare?ids=1,2,3 or #/compare?sweep=N, optionally &metric=,
// &group_by=, &step=): one scalar metric over many runs, either one mean line per group with a
// ± std band (GET /compare does the grouping on the server) or every run's own series overlaid
// (one request per run, at most MAX_DRAWN runs); variance vs depth of the runs at one step; and a
// table of final values per group. All requests go out in parallel; every series request asks
// for as many buckets as the chart is wide.

import { get, bucketsFor } from './api.js';
import {
	h, Plot, chartBox, checkbox, selectBox, ensureCss, UPLOT_CSS, colour, colourFor, align, widthOf, fmt, uid,
} from './charts.js';

const MAX_DRAWN = 48;        // runs drawn one line each (overlay, depth chart)
const MAX_COMPARE = 200;     // ids GET /compare takes
const METRICS = ['loss', 'val_loss', 'grad_norm', 'lr'];
const GROUPS = [['', 'none'], ['model.arch', 'model.arch'], ['norm.type', 'norm.type'], ['norm.placement', 'norm.placement'], ['seed', 'seed'],
	['model.n_layer', 'model.n_layer'], ['model.d_model', 'model.d_model'], ['custom', 'other (dotted path)…']];
const enc = encodeURIComponent;
const errText = (e) => (e && e.message ? e.message : String(e));

function section(title, ...kids) {
	const id = uid('sec');
	return h('section', { class: 'nl-section', 'aria-labelledby': id }, h('h3', { id, text: title }), ...kids);
}

function runLabel(r) {
	if (!r) return '?';
	const bits = [r.norm_type && r.placement ? `${r.norm_type}/${r.placement}` : r.norm_type,
		r.n_layer ? `L${r.n_layer}` : null, r.seed !== undefined ? `s${r.seed}` : null].filter(Boolean);
	return `#${r.id}${r.name ? ` ${r.name}` : ''}${bits.length ? ` ${bits.join(' ')}` : ''}`;
}

export async function renderCompare(root, params) {
	const started = performance.now();
	const P = params instanceof URLSearchParams ? params : new URLSearchParams(params || '');
	const S = {
		closed: false, everConnected: false, plots: [], runs: [], byId: new Map(), groupOf: new Map(),
		metric: METRICS.includes(P.get('metric')) ? P.get('metric') : (P.get('metric') || 'loss'),
		groupBy: P.get('group_by') || '', step: P.get('step') || 'latest', drawnOnce: false, seq: 0, dseq: 0,
	};
	const view = h('div', { class: 'nl-view nl-compare' });
	// window.normlabTimings describes the view on screen: a new view starts without one, and
	// leaving a view takes its figures away (a test must never read the previous view's).
	window.normlabTimings = { view: 'compare', started, drawn: null };
	const cleanup = () => {
		if (S.closed) return;
		S.closed = true;
		if (window.normlabTimings && window.normlabTimings.started === started) window.normlabTimings = null;
		for (const p of S.plots) p.destroy();
		S.plots = [];
	};
	const alive = () => {
		if (S.closed) return false;
		if (view.isConnected) { S.everConnected = true; return true; }
		if (S.everConnected) { cleanup(); return false; }
		return true;
	};

	ensureCss(UPLOT_CSS);
	root.replaceChildren(view);

	// ---------- layout ----------
	const title = h('h1', { text: 'Compare' });
	const subtitle = h('p', { class: 'nl-run-meta', text: 'Loading…' });
	const metricSel = selectBox('metric', METRICS.includes(S.metric) ? METRICS : [...METRICS, S.metric], S.metric, (v) => { S.metric = v; saveUrl(); loadMetric(); });
	const known = GROUPS.some(([v]) => v === S.groupBy && v !== 'custom');
	const groupSel = selectBox('group by', GROUPS, known ? S.groupBy : 'custom', (v) => {
		pathInput.hidden = v !== 'custom';
		pathLabel.hidden = v !== 'custom';
		if (v === 'custom') { pathInput.focus(); if (!pathInput.value.trim()) return; S.groupBy = pathInput.value.trim(); } else S.groupBy = v;
		saveUrl();
		loadMetric();
	});
	const pathInput = h('input', { type: 'text', id: uid('path'), placeholder: 'e.g. train.lr', value: known ? '' : S.groupBy, hidden: known, size: 16 });
	const pathLabel = h('label', { for: pathInput.id, text: 'dotted path', hidden: known });
	pathInput.addEventListener('change', () => {
		const v = pathInput.value.trim();
		if (!v || v === S.groupBy) return;
		S.groupBy = v;
		saveUrl();
		loadMetric();
	});
	const metricBox = chartBox('compare-metric', 'The chosen metric against step for the compared runs or groups');
	const metricNote = h('p', { class: 'nl-note', 'aria-live': 'polite' });
	const metricPlot = track(new Plot(metricBox, { xLabel: 'step', yLabel: S.metric, series: [], height: 320 }));
	metricPlot.onDraw = () => {
		if (S.drawnOnce) return;
		S.drawnOnce = true;
		window.normlabTimings = { view: 'compare', started, drawn: performance.now() };
	};
	const logY = checkbox('log y', false, (on) => metricPlot.setLogY(on));

	const finalTable = h('table', { id: 'compare-final', class: 'nl-table' });
	const finalWrap = h('div', { class: 'nl-table-wrap' }, finalTable);

	const depthBox = chartBox('compare-depth', 'Residual-stream variance against layer for each run at one step');
	const depthNote = h('p', { class: 'nl-note', 'aria-live': 'polite' });
	const depthPlot = track(new Plot(depthBox, { xLabel: 'layer', yLabel: 'resid.var', logY: true, xInt: true, xPad: true, points: true, series: [], height: 300 }));
	const stepSel = selectBox('step', [['latest', 'latest']], 'latest', (v) => { S.step = v; saveUrl(); loadDepth(); });
	const depthLog = checkbox('log y', true, (on) => depthPlot.setLogY(on));

	const body = [
		h('div', { class: 'nl-controls' }, metricSel.wrap, groupSel.wrap, h('span', { class: 'nl-ctl' }, pathLabel, ' ', pathInput), logY.wrap),
		section('Metric over steps', metricNote, metricBox),
		section('Final values', finalWrap),
		section('Variance vs depth', h('div', { class: 'nl-controls' }, stepSel.wrap, depthLog.wrap), depthNote, depthBox),
	];
	view.append(h('header', { class: 'nl-run-head' }, title, subtitle), ...body);

	function track(p) { S.plots.push(p); return p; }

	function saveUrl() {
		if (!location.hash.startsWith('#/compare')) return;
		const q = new URLSearchParams();
		if (P.get('sweep')) q.set('sweep', P.get('sweep'));
		if (P.get('ids')) q.set('ids', P.get('ids'));
		if (S.metric !== 'loss') q.set('metric', S.metric);
		if (S.groupBy) q.set('group_by', S.groupBy);
		if (S.step !== 'latest') q.set('step', S.step);
		// replaceState fires no hashchange: the router does not re-render the view.
		history.replaceState(history.state, '', `#/compare?${q.toString().replace(/%2C/g, ',')}`);
	}

	// ---------- the runs ----------
	try {
		await resolveRuns();
	} catch (e) {
		if (alive()) subtitle.replaceWith(h('p', { class: 'nl-note nl-error', role: 'alert', text: errText(e) }));
		return cleanup;
	}
	if (!alive()) return cleanup;
	if (!S.runs.length) {
		for (const b of body) b.hidden = true;
		subtitle.textContent = 'No runs to compare: select runs on the Runs page, or open #/compare?ids=1,2,3 or a sweep:';
		if (!P.get('sweep')) {
			try {
				const sw = await get('/sweeps', { page_size: 50 });
				if (!alive()) return cleanup;
				subtitle.after(h('ul', { class: 'nl-sweeps' }, ...(sw.items || []).map((x) => h('li', {},
					h('a', { href: `#/compare?sweep=${x.id}&group_by=norm.type`, text: `sweep ${x.id}${x.name ? ` (${x.name})` : ''}` }),
					` — ${x.n_cells} runs, owner ${x.owner}`))));
			} catch { /* the hint above stays */ }
		}
		S.drawnOnce = true;
		window.normlabTimings = { view: 'compare', started, drawn: performance.now() };
		return cleanup;
	}
	{
		const n = S.runs.length, sweep = P.get('sweep');
		const counts = {};
		for (const r of S.runs) counts[r.status] = (counts[r.status] || 0) + 1;
		subtitle.textContent = `${sweep ? `Sweep ${sweep}: ` : ''}${n} run${n === 1 ? '' : 's'} (${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')})`;
	}
	// Everything at once: the metric chart (first, the one that is timed), the depth profiles and
	// the depth steps list.
	const metricDone = loadMetric();
	const depthDone = loadDepth(metricDone);
	loadDepthSteps();
	await Promise.allSettled([metricDone, depthDone]);
	return cleanup;

	async function resolveRuns() {
		const sweep = P.get('sweep');
		if (sweep) {
			const [sw, list] = await Promise.all([
				get(`/sweeps/${enc(sweep)}`),
				get('/experiments', { sweep, page_size: 1000 }).catch(() => null),
			]);
			const info = new Map(((list && list.items) || []).map((r) => [r.id, r]));
			S.runs = (sw.cells || []).map((c) => ({ ...c, ...(info.get(c.id) || {}) }));
		} else {
			const ids = [...new Set(String(P.get('ids') || '').split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0))];
			const got = await Promise.all(ids.map((i) => get(`/experiments/${i}`).catch((e) => ({ id: i, status: 'missing', error: errText(e) }))));
			S.runs = got;
		}
		for (const r of S.runs) S.byId.set(r.id, r);
	}

	// Runs that have recorded something (a queued run has no series: asking would only 404).
	function withData() {
		return S.runs.filter((r) => r.status !== 'missing' && r.status !== 'queued' && (r.step || 0) > 0);
	}

	// ---------- the metric ----------
	async function loadMetric() {
		const seq = ++S.seq;
		metricPlot.o.yLabel = S.metric;
		const runs = withData();
		if (!runs.length) {
			metricNote.textContent = 'None of these runs has recorded anything yet.';
			metricPlot.setData([[]], []);
			fillFinal([]);
			return;
		}
		const buckets = bucketsFor(widthOf(metricBox));
		try {
			if (S.groupBy) await grouped(runs, buckets, seq);
			else await overlay(runs, buckets, seq);
		} catch (e) {
			if (!alive() || seq !== S.seq) return;
			metricNote.textContent = `${S.metric}${S.groupBy ? ` grouped by ${S.groupBy}` : ''}: ${errText(e)}`;
			metricNote.classList.add('nl-error');
			metricPlot.setData([[]], []);
			fillFinal([]);
		}
	}

	async function grouped(runs, buckets, seq) {
		const ids = runs.map((r) => r.id);
		const cmp = await get('/compare', { ids: ids.slice(0, MAX_COMPARE).join(','), metric: S.metric, group_by: S.groupBy, buckets });
		if (!alive() || seq !== S.seq) return;
		metricNote.classList.remove('nl-error');
		metricNote.textContent = ids.length > MAX_COMPARE ? `Grouping the first ${MAX_COMPARE} of ${ids.length} runs (the API's limit).` : '';
		const groups = cmp.groups || [];
		S.groupOf = new Map();
		groups.forEach((g, i) => { for (const id of g.ids || []) S.groupOf.set(id, { key: g.key, i }); });
		const series = groups.map((g, i) => ({ label: `${S.groupBy}=${g.key} (n=${(g.ids || []).length})`, color: colourFor(g.key, i), width: 2 }));
		const bands = groups.map((g, i) => ({
			series: i + 1,
			lo: g.mean.map((m, k) => (m === null || g.std[k] === null ? null : m - g.std[k])),
			hi: g.mean.map((m, k) => (m === null || g.std[k] === null ? null : m + g.std[k])),
		}));
		metricPlot.setBands(bands);
		metricPlot.setMarkers(divergenceMarkers(runs, (r) => {
			const g = S.groupOf.get(r.id);
			return g ? colourFor(g.key, g.i) : '#c00';
		}));
		metricPlot.setData([cmp.step || [], ...groups.map((g) => g.mean)], series);
		fillFinal((cmp.final || []).map((f) => {
			const g = groups.find((x) => x.key === f.key) || { ids: [] };
			return { key: `${S.groupBy}=${f.key}`, mean: f.loss_mean, std: f.loss_std, n: f.n, ids: g.ids || [] };
		}));
		recolourDepth();
	}

	async function overlay(runs, buckets, seq) {
		const drawn = runs.slice(0, MAX_DRAWN);
		const got = await Promise.all(drawn.map((r) => get(`/experiments/${r.id}/metrics/${enc(S.metric)}`, { buckets }).catch((e) => e)));
		if (!alive() || seq !== S.seq) return;
		S.groupOf = new Map();
		const ok = [], missing = [];
		got.forEach((s, i) => (s instanceof Error ? missing.push(drawn[i]) : ok.push({ run: drawn[i], s })));
		const msgs = [];
		if (runs.length > MAX_DRAWN) msgs.push(`Showing ${MAX_DRAWN} of ${runs.length} runs; group them to see all.`);
		if (missing.length) msgs.push(`No ${S.metric} for ${missing.map((r) => `#${r.id}`).join(', ')}.`);
		metricNote.classList.remove('nl-error');
		metricNote.textContent = msgs.join(' ');
		const cols = align(ok.map(({ s }) => ({ x: s.step || [], y: s.mean || [] })));
		ok.forEach(({ run }, i) => S.groupOf.set(run.id, { key: String(run.id), i }));
		metricPlot.setBands([]);
		metricPlot.setMarkers(divergenceMarkers(ok.map(({ run }) => run), (r) => colour(S.groupOf.get(r.id).i)));
		metricPlot.setData(cols, ok.map(({ run }, i) => ({ label: runLabel(run), color: colour(i) })));
		// a run's final value: the last finite value of its last bucket that has one
		fillFinal(ok.map(({ run, s }) => {
			let v = null;
			for (let k = (s.last || []).length - 1; k >= 0 && v === null; k--) if (s.last[k] !== null && Number.isFinite(s.last[k])) v = s.last[k];
			return { key: runLabel(run), href: `#/run/${run.id}`, mean: v, std: null, n: 1, ids: [run.id] };
		}));
		recolourDepth();
	}

	// A dashed line at each diverged run's step (labelled for the first few; the note counts
	// them all): a diverged run's line simply ends, and that must not pass for a finished one.
	function divergenceMarkers(runs, colourOf) {
		const div = runs.filter((r) => Number(r.diverged_step) > 0).sort((a, b) => a.diverged_step - b.diverged_step);
		if (div.length) {
			const txt = `${div.length} run${div.length === 1 ? '' : 's'} diverged (dashed lines): ${div.slice(0, 12).map((r) => `#${r.id} at step ${r.diverged_step}`).join(', ')}${div.length > 12 ? ', …' : ''}.`;
			metricNote.textContent = [metricNote.textContent, txt].filter(Boolean).join(' ');
		}
		return div.map((r, k) => ({ x: Number(r.diverged_step), color: colourOf(r), label: k < 5 ? `#${r.id} diverged at ${r.diverged_step}` : '' }));
	}

	function fillFinal(rows) {
		const head = h('tr', {}, h('th', { scope: 'col', text: S.groupBy ? 'group' : 'run' }), h('th', { scope: 'col', text: 'n' }),
			h('th', { scope: 'col', text: `final ${S.metric} (mean ± std)` }), h('th', { scope: 'col', text: 'diverged' }));
		const body = rows.map((r) => {
			const div = r.ids.filter((id) => (S.byId.get(id) || {}).status === 'diverged').length;
			return h('tr', {},
				h('td', {}, r.href ? h('a', { href: r.href, text: r.key }) : r.key),
				h('td', { class: 'nl-num', text: String(r.n) }),
				h('td', { class: 'nl-num', text: r.mean === null || r.mean === undefined ? '—' : `${fmt(r.mean)}${r.std !== null && r.std !== undefined ? ` ± ${fmt(r.std)}` : ''}` }),
				h('td', { class: 'nl-num', text: String(div) }));
		});
		finalTable.replaceChildren(h('caption', { text: `Final ${S.metric}: each run's last finite value${S.groupBy ? `, per ${S.groupBy}` : ''}` }),
			h('thead', {}, head), h('tbody', {}, ...body));
	}

	// ---------- variance vs depth ----------
	async function loadDepthSteps() {
		const first = withData()[0];
		if (!first) return;
		try {
			const m = await get(`/experiments/${first.id}/depth/resid.var`, { form: 'matrix', max_steps: 100 });
			if (!alive()) return;
			const steps = (m.steps || []).slice().reverse();
			const keep = stepSel.select.value;
			stepSel.select.replaceChildren(h('option', { value: 'latest', text: 'latest' }), ...steps.map((s) => h('option', { value: String(s), text: String(s) })));
			if (keep !== 'latest' && !steps.includes(Number(keep))) stepSel.select.append(h('option', { value: keep, text: keep }));
			stepSel.select.value = keep;
		} catch { /* the select keeps "latest" */ }
	}

	async function loadDepth(after) {
		const seq = ++S.dseq;
		if (S.step !== 'latest' && ![...stepSel.select.options].some((o) => o.value === S.step))
			stepSel.select.append(h('option', { value: S.step, text: S.step }));
		stepSel.select.value = S.step;
		const all = withData();
		const runs = all.slice(0, MAX_DRAWN);
		const got = await Promise.all(runs.map((r) => get(`/experiments/${r.id}/depth/resid.var`, { step: S.step }).catch((e) => e)));
		if (after) await after;   // colours follow the metric chart's groups
		if (!alive() || seq !== S.dseq) return;
		const ok = [], missing = [];
		got.forEach((d, i) => (d instanceof Error || !d.values ? missing.push(runs[i]) : ok.push({ run: runs[i], d })));
		const msgs = [];
		if (all.length > MAX_DRAWN) msgs.push(`Showing ${MAX_DRAWN} of ${all.length} runs.`);
		if (missing.length) msgs.push(`No resid.var row${S.step === 'latest' ? '' : ` at step ${S.step}`} for ${missing.map((r) => `#${r.id}`).join(', ')}.`);
		if (S.step === 'latest' && ok.length) {
			const steps = new Set(ok.map(({ d }) => d.step));
			if (steps.size > 1) msgs.push(`Latest rows are at different steps (${[...steps].sort((a, b) => a - b).join(', ')}).`);
		}
		depthNote.textContent = msgs.join(' ');
		S.depthRows = ok;
		drawDepth();
	}

	function depthColour(run, i) {
		const g = S.groupOf.get(run.id);
		if (S.groupBy && g) return colourFor(g.key, g.i);
		return g ? colour(g.i) : colour(i);
	}

	function drawDepth() {
		const ok = S.depthRows || [];
		const L = Math.max(0, ...ok.map(({ d }) => d.values.length));
		const xs = Array.from({ length: L }, (_, l) => l + 1);
		const series = ok.map(({ run, d }, i) => {
			const g = S.groupOf.get(run.id);
			const label = `${runLabel(run)}${S.groupBy && g ? ` [${g.key}]` : ''}${S.step === 'latest' ? ` @${d.step}` : ''}`;
			return { label, color: depthColour(run, i), width: 1.25 };
		});
		depthPlot.setData([xs, ...ok.map(({ d }) => xs.map((_, l) => (d.values[l] === undefined ? null : d.values[l])))], series);
	}

	function recolourDepth() {
		if (S.depthRows) drawDepth();
	}
}
