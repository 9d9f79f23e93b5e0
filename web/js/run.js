// run.js — the run view (#/run/<id>): loss, lr and gradient norm over steps; train and test
// accuracy with the epochs done, for runs that record them (vit); variance, gradient
// flow, massive activations, kurtosis and angle against depth at a chosen step; a layer × step
// heatmap of any depth statistic; DyT/Derf α and saturation over time; the norm's input → output
// scatter; and the spec with a "Copy as curl" button.
// Every series request asks for as many buckets as its chart is wide (api.js bucketsFor); depth
// statistics come as one matrix per statistic (never one series per layer). A running run is
// followed live: progress events append to the loss chart in place, and the depth charts are
// refreshed every ~10 events or when a newer depth row must exist.

import { get, bucketsFor } from './api.js';
import { onEvent } from './live.js';
import {
	h, Plot, Scatter, chartBox, checkbox, selectBox, setOptions, slider, radios, ensureCss, UPLOT_CSS,
	colour, viridisCss, ema, align, widthOf, markChart, uid,
} from './charts.js';
import { Heatmap, heatmapColumns } from './heatmap.js';

const LIVE_STATES = new Set(['queued', 'running', 'interrupted']);
// Depth statistics the profile charts draw (fetched as matrices, so moving the step slider
// fetches nothing).
const PROFILE_STATS = ['resid.var', 'grad.block', 'grad.resid', 'resid.maxabs', 'resid.top1_med', 'resid.kurt', 'angle'];
const SLIDER_STEPS = 200;          // most depth steps the step slider offers
const REFRESH_EVERY = 10;          // progress events between depth refreshes
const REFRESH_MIN_MS = 3000;       // and never more often than this
const LIVE_DRAW_MS = 250;          // appended points are drawn at most this often

const enc = encodeURIComponent;

function card(title, box, ...controls) {
	const head = h('h4', { text: title });
	return h('div', { class: 'nl-card' }, head, controls.length ? h('div', { class: 'nl-controls' }, ...controls) : null, box);
}

function section(title, ...kids) {
	const id = uid('sec');
	return h('section', { class: 'nl-section', 'aria-labelledby': id }, h('h3', { id, text: title }), ...kids);
}

// A message in a chart's box (no data yet, or an error), replacing the previous one.
function note(box, text, isError) {
	let p = box.querySelector(':scope > .nl-note');
	if (!text) { if (p) p.remove(); return; }
	if (!p) { p = h('p', { class: 'nl-note' }); box.prepend(p); }
	p.textContent = text;
	p.classList.toggle('nl-error', !!isError);
}

const errText = (e) => (e && e.message ? e.message : String(e));

// Series answer → {x, y (bucket means), lo, hi (bucket min/max, so spikes stay visible)}.
function seriesCols(s) {
	return { x: s.step || [], y: s.mean || [], lo: s.min || [], hi: s.max || [], last: s.last || [] };
}

// The row of matrix `m` at `step`, or the nearest earlier one (else the first).
function rowAt(m, step) {
	if (!m || !m.steps || !m.steps.length) return null;
	let best = 0;
	for (let i = 0; i < m.steps.length; i++) if (m.steps[i] <= step) best = i;
	return { step: m.steps[best], values: m.values[best] || [] };
}

const layersX = (n) => Array.from({ length: n }, (_, i) => i + 1);

// Picks `k` indices evenly from 0..n-1, first and last included.
function evenly(n, k) {
	if (n <= 0) return [];
	if (k >= n) return Array.from({ length: n }, (_, i) => i);
	const out = new Set();
	for (let j = 0; j < k; j++) out.add(Math.round((j * (n - 1)) / (k - 1)));
	return [...out];
}

export async function renderRun(root, id) {
	const started = performance.now();
	const S = {
		closed: false, everConnected: false, plots: [], unsubs: [], drawTimer: 0,
		exp: null, list: null, depth: new Map(), steps: [], stepIdx: -1, followLast: true,
		loss: null, val: null, smooth: 0, progressN: 0, lastRefresh: 0, refreshing: false,
		lastDepthStep: -1, drawnOnce: false, rebuilding: false, refetchingLoss: false,
	};
	const view = h('div', { class: 'nl-view nl-run' });
	// window.normlabTimings describes the view on screen: a new view starts without one, and
	// leaving a view takes its figures away (a test must never read the previous view's).
	window.normlabTimings = { view: 'run', started, drawn: null };
	const cleanup = () => {
		if (S.closed) return;
		S.closed = true;
		if (window.normlabTimings && window.normlabTimings.started === started) window.normlabTimings = null;
		for (const u of S.unsubs) { try { u(); } catch { /* already gone */ } }
		S.unsubs = [];
		if (S.drawTimer) clearTimeout(S.drawTimer);
		for (const p of S.plots) p.destroy();
		S.plots = [];
	};
	// A continuation that finds the view gone (navigated away before the router got the
	// cleanup function) cleans up by itself.
	const alive = () => {
		if (S.closed) return false;
		if (view.isConnected) { S.everConnected = true; return true; }
		if (S.everConnected) { cleanup(); return false; }
		return true;
	};
	const track = (p) => { S.plots.push(p); return p; };

	ensureCss(UPLOT_CSS);
	root.replaceChildren(view);
	view.append(h('p', { class: 'nl-note', text: `Loading run ${id}…` }));

	try {
		[S.exp, S.list] = await Promise.all([get(`/experiments/${enc(id)}`), get(`/experiments/${enc(id)}/metrics`)]);
	} catch (e) {
		if (alive()) view.replaceChildren(h('p', { class: 'nl-note nl-error', role: 'alert', text: `Run ${id}: ${errText(e)}` }));
		return cleanup;
	}
	if (!alive()) return cleanup;

	const ui = {};
	build();
	if (LIVE_STATES.has(S.exp.status)) subscribe();
	return cleanup;

	// ---------- layout ----------

	function build() {
		for (const p of S.plots) p.destroy();
		S.plots = [];
		S.depth = new Map();
		const exp = S.exp, list = S.list || {};
		const scalars = new Set(list.scalars || []), depthNames = list.depth || [];
		S.scalars = scalars;
		S.depthNames = new Set(depthNames);
		view.replaceChildren(...[header(exp), lossSection(), accuracySection(), scalarSection(), varianceSection(), profileSection(),
			heatmapSection(depthNames), alphaSection(depthNames), scurveSection(list.samples || []), specSection(exp)].filter(Boolean));
		updateDivergence();
		updateHealth();
		loadAll();
	}

	function header(exp) {
		ui.status = h('span', { id: 'run-status', class: `status status-${exp.status}`, text: exp.status });
		ui.step = h('span', { id: 'run-step', text: String(exp.step || 0) });
		const spec = exp.spec || {};
		const bits = [
			exp.arch || (spec.model && spec.model.arch),
			exp.norm_type || (spec.norm && spec.norm.type), exp.placement || (spec.norm && spec.norm.placement),
			`${exp.n_layer || (spec.model && spec.model.n_layer)} layers`,
			spec.model && spec.model.d_model ? `d_model ${spec.model.d_model}` : null, `seed ${exp.seed}`,
			exp.owner ? `owner ${exp.owner}` : null,
		].filter(Boolean).join(' · ');
		ui.headDiv = h('p', { class: 'nl-diverged', hidden: true });
		ui.health = h('p', { id: 'run-health', class: 'nl-health', hidden: true, 'aria-live': 'polite' });
		ui.error = h('p', { class: 'nl-note nl-error', hidden: !exp.error, text: exp.error ? `error: ${exp.error}` : '' });
		return h('header', { class: 'nl-run-head' },
			h('h1', { text: `Run ${exp.id}${exp.name ? ` — ${exp.name}` : ''}` }),
			h('p', { class: 'nl-run-meta' }, 'status ', ui.status, ' · step ', ui.step, ` of ${exp.steps} · `, bits,
				exp.sweep_id ? h('span', {}, ' · ', h('a', { href: `#/compare?sweep=${exp.sweep_id}`, text: `sweep ${exp.sweep_id}, cell ${exp.cell}` }),
					' (', h('a', { href: `#/sweeps/${exp.sweep_id}/report`, text: 'report' }), ')') : null,
			lineage(exp)),
			ui.headDiv, ui.health, ui.error);
	}

	// Run health (engine/health.h): a badge and the reason the engine gave, with its step.
	function updateHealth() {
		const hl = S.exp.health || {};
		const on = !!hl.status && hl.status !== 'ok';
		ui.health.hidden = !on;
		if (!on) { ui.health.replaceChildren(); return; }
		ui.health.replaceChildren(...[
			h('span', { class: `badge health health-${hl.status}`, text: hl.step ? `${hl.status} @ step ${hl.step}` : hl.status }),
			' ', h('span', { class: 'nl-health-reason', text: hl.reason || '' })]);
	}

	// A child run (LN removal, NORMS.md §8) links to the run it started from; a parent lists the
	// runs started from it.
	function lineage(exp) {
		const kids = exp.children || [];
		if (!exp.parent && !kids.length) return null;
		const parts = [];
		if (exp.parent) parts.push(' · child of ', h('a', { id: 'run-parent', href: `#/run/${exp.parent}`, text: `run ${exp.parent}` }));
		if (kids.length) {
			parts.push(' · children: ');
			kids.forEach((k, i) => parts.push(i ? ', ' : '', h('a', { class: 'run-child', href: `#/run/${k}`, text: `run ${k}` })));
		}
		const mode = exp.spec && exp.spec.lnremove ? exp.spec.lnremove.mode : null;
		if (exp.parent) parts.push(mode && mode !== 'none' ? ` · LN removal (${mode})` : ' · fine-tune, norms kept');
		return h('span', { class: 'nl-lineage' }, ...parts);
	}

	function lossSection() {
		ui.lossBox = chartBox('loss', 'Training loss and validation loss against step');
		ui.lossNote = h('p', { class: 'nl-diverged', hidden: true, 'aria-live': 'polite' });
		const log = checkbox('log y', false, (on) => ui.lossPlot.setLogY(on));
		const sm = slider('smoothing (EMA of train loss)', { min: 0, max: 0.99, step: 0.01, value: S.smooth },
			(v) => v.toFixed(2), (v) => { S.smooth = v; drawLoss(); });
		ui.lossPlot = track(new Plot(ui.lossBox, {
			xLabel: 'step', yLabel: 'loss', logY: false,
			series: [{ label: 'loss', color: colour(0) }, { label: 'val_loss', color: colour(1), points: { show: true, size: 5 } },
				// the loss of a model that learned only symbol frequencies: a run stuck on this line
				// learned nothing else (run health calls it stalled)
				{ label: 'unigram entropy', color: '#777', dash: [6, 4], width: 1 }],
		}));
		ui.lossPlot.onDraw = () => {
			if (S.drawnOnce) return;
			S.drawnOnce = true;
			window.normlabTimings = { view: 'run', started, drawn: performance.now() };
		};
		return section('Loss', h('div', { class: 'nl-controls' }, log.wrap, sm.wrap), ui.lossNote, ui.lossBox);
	}

	// Image classifiers (vit) record train_acc and val_acc (on the test set) and epochs; a run
	// without them has no section.
	function accuracySection() {
		if (!S.scalars.has('train_acc') && !S.scalars.has('val_acc')) return null;
		ui.accBox = chartBox('accuracy', 'Training accuracy and test accuracy against step');
		ui.accPlot = track(new Plot(ui.accBox, {
			xLabel: 'step', yLabel: 'accuracy',
			series: [{ label: 'train_acc', color: colour(0) }, { label: 'val_acc', color: colour(1), points: { show: true, size: 5 } }],
		}));
		ui.epochs = h('span', { id: 'run-epochs', text: '—' });
		return section('Accuracy', h('p', { class: 'nl-run-meta' }, 'epochs ', ui.epochs), ui.accBox);
	}

	async function loadAccuracy() {
		if (!ui.accPlot) return;
		const has = (n) => S.scalars.has(n);
		const [tr, va, ep] = await Promise.all([
			has('train_acc') ? series('train_acc', ui.accBox).catch((e) => e) : null,
			has('val_acc') ? series('val_acc', ui.accBox).catch((e) => e) : null,
			has('epochs') ? series('epochs', ui.accBox).catch((e) => e) : null,
		]);
		if (!alive()) return;
		const ok = (s) => s && !(s instanceof Error);
		const bad = [tr, va].find((s) => s instanceof Error);
		note(ui.accBox, bad ? `accuracy: ${errText(bad)}` : '', !!bad);
		const T = ok(tr) ? seriesCols(tr) : { x: [], y: [] }, V = ok(va) ? seriesCols(va) : { x: [], y: [] };
		ui.accPlot.setData(align([T, V]));
		if (ok(ep)) {
			const c = seriesCols(ep), last = c.last.length ? c.last[c.last.length - 1] : c.y[c.y.length - 1];
			if (Number.isFinite(Number(last))) ui.epochs.textContent = Number(last).toFixed(2);
		}
	}

	function scalarSection() {
		ui.lrBox = chartBox('lr', 'Learning rate against step');
		ui.gnBox = chartBox('grad_norm', 'Global gradient norm against step (bucket min–max band)');
		ui.lrPlot = track(new Plot(ui.lrBox, { xLabel: 'step', yLabel: 'lr', series: [{ label: 'lr', color: colour(2) }], height: 200 }));
		ui.gnPlot = track(new Plot(ui.gnBox, { xLabel: 'step', yLabel: '‖g‖', series: [{ label: 'grad_norm', color: colour(3) }], height: 200 }));
		const log = checkbox('log y', false, (on) => ui.gnPlot.setLogY(on));
		return section('Learning rate and gradient norm', h('div', { class: 'nl-grid2' },
			card('Learning rate', ui.lrBox), card('Gradient norm', ui.gnBox, log.wrap)));
	}

	function varianceSection() {
		ui.varBox = chartBox('variance-depth', 'Residual-stream variance against layer at the chosen steps');
		ui.varPlot = track(new Plot(ui.varBox, { xLabel: 'layer', yLabel: 'resid.var', logY: true, xInt: true, xPad: true, points: true, series: [] }));
		ui.slider = slider('step', { min: 0, max: 0, step: 1, value: 0 }, (i) => (S.steps.length ? String(S.steps[i]) : '—'), (i) => {
			S.stepIdx = i;
			S.followLast = i === S.steps.length - 1;
			drawDepth();
		});
		ui.overlay = selectBox('overlay', [['none', 'chosen step only'], ['fml', 'first, middle, last'], ['5', '5 steps, evenly spread'], ['10', '10 steps, evenly spread']],
			'fml', () => drawVariance());
		const log = checkbox('log y', true, (on) => ui.varPlot.setLogY(on));
		return section('Variance vs depth', h('div', { class: 'nl-controls' }, ui.slider.wrap, ui.overlay.wrap, log.wrap), ui.varBox);
	}

	function profileSection() {
		ui.gradBox = chartBox('grad-depth', 'Gradient norms against layer: block parameters and ‖∂L/∂x_l‖');
		ui.massBox = chartBox('massive-depth', 'Massive activations against layer: max |x| and top-1 / median');
		ui.kurtBox = chartBox('kurtosis-depth', 'Kurtosis of the residual stream against layer');
		ui.angleBox = chartBox('angle-depth', 'Angular distance between consecutive blocks against layer');
		const common = { xLabel: 'layer', xInt: true, xPad: true, points: true, height: 220 };
		ui.gradPlot = track(new Plot(ui.gradBox, { ...common, yLabel: 'norm', logY: true,
			series: [{ label: 'grad.block', color: colour(0) }, { label: 'grad.resid ‖∂L/∂x_l‖', color: colour(1) }] }));
		ui.massPlot = track(new Plot(ui.massBox, { ...common, yLabel: 'max |x|', y2Label: 'top-1 / median', logY: false,
			series: [{ label: 'resid.maxabs', color: colour(3) }, { label: 'resid.top1_med', color: colour(4), scale: 'y2' }] }));
		ui.kurtPlot = track(new Plot(ui.kurtBox, { ...common, yLabel: 'kurtosis', series: [{ label: 'resid.kurt', color: colour(5) }] }));
		ui.anglePlot = track(new Plot(ui.angleBox, { ...common, yLabel: 'angle / π', series: [{ label: 'angle', color: colour(6) }] }));
		ui.profileStep = h('span', { text: '—' });
		const gl = checkbox('log y', true, (on) => ui.gradPlot.setLogY(on));
		const ml = checkbox('log y', false, (on) => ui.massPlot.setLogY(on));
		return section('Depth profiles',
			h('p', { class: 'nl-hint' }, 'At step ', ui.profileStep, ' (move the step slider under "Variance vs depth").'),
			h('div', { class: 'nl-grid2' },
				card('Gradient flow', ui.gradBox, gl.wrap), card('Massive activations', ui.massBox, ml.wrap),
				card('Kurtosis', ui.kurtBox), card('Angle between consecutive blocks', ui.angleBox)));
	}

	function heatmapSection(depthNames) {
		ui.hmBox = chartBox('heatmap', 'Heatmap of a depth statistic: layer by step');
		ui.hm = track(new Heatmap(ui.hmBox, { label: 'layer by step heatmap of the chosen depth statistic' }));
		const first = depthNames.includes('resid.var') ? 'resid.var' : depthNames[0] || '';
		ui.hmStat = selectBox('statistic', depthNames.length ? depthNames : [['', 'no depth statistics yet']], first, () => loadHeatmap());
		ui.hmLog = checkbox('log scale', true, (on) => ui.hm.setLog(on));
		return section('Heatmap (layer × step)', h('div', { class: 'nl-controls' }, ui.hmStat.wrap, ui.hmLog.wrap), ui.hmBox);
	}

	function alphaSection(depthNames) {
		const sites = depthNames.filter((n) => !n.startsWith('grad.') && /^[^.]+\.alpha$/.test(n)).map((n) => n.slice(0, -'.alpha'.length));
		ui.alphaSites = sites;
		if (!sites.length) return null;
		ui.alphaBox = chartBox('alpha-time', 'DyT/Derf α per layer against step');
		ui.satBox = chartBox('sat-time', 'DyT/Derf saturated fraction P(|αx+s|>2) per layer against step');
		ui.alphaPlot = track(new Plot(ui.alphaBox, { xLabel: 'step', yLabel: 'α', series: [], height: 220 }));
		ui.satPlot = track(new Plot(ui.satBox, { xLabel: 'step', yLabel: 'saturated fraction', series: [], height: 220 }));
		ui.alphaSite = selectBox('site', sites, sites[0], () => loadAlpha());
		return section('DyT / Derf: α and saturation', h('div', { class: 'nl-controls' }, ui.alphaSite.wrap),
			h('div', { class: 'nl-grid2' }, card('α per layer', ui.alphaBox), card('saturated fraction per layer', ui.satBox)));
	}

	function scurveSection(samples) {
		ui.scBox = chartBox('scurve', 'Norm input against normalized output before the affine map, for the chosen site and step');
		ui.sc = track(new Scatter(ui.scBox, { label: 'scatter of norm input x against normalized output', xLabel: 'norm input x', yLabel: 'normalized output (before affine)' }));
		ui.scSamples = samples;
		const sites = samples.map((s) => s.site);
		ui.scSite = selectBox('site', sites.length ? sites : [['', 'no samples yet']], sites[0] || '', () => { fillSampleSteps(); loadSamples(); });
		ui.scStep = selectBox('step', [], null, () => loadSamples());
		ui.scColour = radios('colour by', uid('colour'), [['token', 'token'], ['channel', 'channel']], 'token', () => drawSamples());
		ui.scInfo = h('p', { class: 'nl-hint', text: '' });
		fillSampleSteps();
		return section('Norm input → output (S-curve)', h('div', { class: 'nl-controls' }, ui.scSite.wrap, ui.scStep.wrap, ui.scColour.wrap), ui.scInfo, ui.scBox);
	}

	// Steps a site has samples at. The API lists the latest only; samples are also written at
	// step 1 and every probe.samples_every steps, so those are offered too.
	function fillSampleSteps() {
		const site = (ui.scSamples || []).find((s) => s.site === ui.scSite.select.value);
		if (!site) { setOptions(ui.scStep.select, [['latest', 'latest']], 'latest'); return; }
		const latest = site.latest_step;
		const set = new Set(site.steps || []);
		const probe = (S.exp.spec && S.exp.spec.probe) || {};
		if (latest >= 1) set.add(1);
		const every = probe.samples_every || 0;
		if (every > 0) for (let s = every; s <= latest && set.size < 200; s += every) set.add(s);
		const steps = [...set].filter((s) => s !== latest).sort((a, b) => b - a);
		setOptions(ui.scStep.select, [['latest', `${latest} (latest)`], ...steps.map((s) => [s, String(s)])], 'latest');
	}

	function specSection(exp) {
		const spec = exp.spec || {};
		const status = h('span', { class: 'nl-copied', role: 'status', 'aria-live': 'polite' });
		const fallback = h('textarea', { class: 'nl-curl', 'aria-label': 'curl command to submit this spec', readonly: true, rows: 3, hidden: true });
		const button = h('button', { type: 'button', text: 'Copy as curl' });
		button.addEventListener('click', async () => {
			const json = JSON.stringify(spec).replace(/'/g, "'\\''");
			const cmd = `curl -s -H "Authorization: Bearer $TOKEN" -d '${json}' ${location.origin}/api/v1/experiments`;
			status.textContent = '';
			try {
				if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
				await navigator.clipboard.writeText(cmd);
				status.textContent = 'copied';
			} catch {
				fallback.value = cmd;
				fallback.hidden = false;
				fallback.focus();
				fallback.select();
				let ok = false;
				try { ok = document.execCommand('copy'); } catch { ok = false; }
				status.textContent = ok ? 'copied' : 'select the command and copy it';
			}
		});
		return section('Spec', h('div', { class: 'nl-controls' }, button, status), fallback,
			h('pre', { class: 'nl-spec', tabindex: '0', 'aria-label': 'canonical spec as JSON', text: JSON.stringify(spec, null, 2) }));
	}

	// ---------- loading ----------

	function loadAll() {
		const jobs = [loadScalars(), loadAccuracy(), loadDepth(), loadHeatmap(), loadAlpha(), loadSamples()];
		Promise.allSettled(jobs).then(() => {
			if (!alive()) return;
			// A run with nothing to draw yet still reports that the view is done.
			if (!S.drawnOnce) { S.drawnOnce = true; window.normlabTimings = { view: 'run', started, drawn: performance.now() }; }
		});
	}

	async function series(name, box) {
		return get(`/experiments/${enc(id)}/metrics/${enc(name)}`, { buckets: bucketsFor(widthOf(box)) });
	}

	async function loadScalars() {
		const has = (n) => S.scalars.has(n);
		const [loss, val, lr, gn, ent, removed] = await Promise.all([
			has('loss') ? series('loss', ui.lossBox).catch((e) => e) : null,
			has('val_loss') ? series('val_loss', ui.lossBox).catch((e) => e) : null,
			has('lr') ? series('lr', ui.lrBox).catch((e) => e) : null,
			has('grad_norm') ? series('grad_norm', ui.gnBox).catch((e) => e) : null,
			has('unigram_entropy') ? series('unigram_entropy', ui.lossBox).catch((e) => e) : null,
			// LN removal: one point per step that removed norm sites (at most 3L + 1 of them),
			// every one wanted as a marker, so no downsampling
			has('lnremove.removed') ? get(`/experiments/${enc(id)}/metrics/lnremove.removed`, { buckets: 1000 }).catch(() => null) : null,
		]);
		if (!alive()) return;
		S.removals = [];
		if (removed && removed.step) {
			const last = removed.last || removed.max || [];
			removed.step.forEach((st, i) => S.removals.push({ x: st, n: last[i] }));
		}
		updateDivergence();
		const ok = (s) => s && !(s instanceof Error);
		S.loss = ok(loss) ? seriesCols(loss) : { x: [], y: [], lo: [], hi: [] };
		S.val = ok(val) ? seriesCols(val) : { x: [], y: [] };
		const e = ok(ent) ? seriesCols(ent).y.find((v) => Number.isFinite(v)) : undefined;
		S.entropy = e === undefined ? null : e;
		note(ui.lossBox, loss instanceof Error ? `loss: ${errText(loss)}` : (!ok(loss) ? 'no loss recorded yet' : ''), loss instanceof Error);
		drawLoss();
		scalarChart(ui.lrPlot, ui.lrBox, lr, 'lr', false);
		scalarChart(ui.gnPlot, ui.gnBox, gn, 'grad_norm', true);
	}

	function scalarChart(plot, box, s, name, band) {
		if (!s || s instanceof Error) {
			note(box, s instanceof Error ? `${name}: ${errText(s)}` : `no ${name} recorded yet`, s instanceof Error);
			plot.setData([[], []]);
			return;
		}
		note(box, '');
		const c = seriesCols(s);
		plot.setBands(band ? [{ series: 1, lo: c.lo, hi: c.hi }] : []);
		plot.setData([c.x, c.y]);
	}

	function drawLoss() {
		if (!S.loss) return;
		const L = S.loss, V = S.val;
		const cols = align([{ x: L.x, y: ema(L.y, S.smooth) }, { x: V.x, y: V.y }, { x: L.x, y: L.lo }, { x: L.x, y: L.hi }]);
		ui.lossPlot.setBands([{ series: 1, lo: cols[3], hi: cols[4] }]);
		ui.lossPlot.setData([cols[0], cols[1], cols[2], cols[0].map(() => S.entropy)]);
	}

	async function depthMatrix(name, maxSteps) {
		return get(`/experiments/${enc(id)}/depth/${enc(name)}`, { form: 'matrix', max_steps: maxSteps });
	}

	async function loadDepth() {
		const names = PROFILE_STATS.filter((n) => S.depthNames.has(n));
		const got = await Promise.all(names.map((n) => depthMatrix(n, SLIDER_STEPS).catch((e) => e)));
		if (!alive()) return;
		S.depth = new Map();
		got.forEach((m, i) => { if (m && !(m instanceof Error)) S.depth.set(names[i], m); });
		const failed = got.find((m) => m instanceof Error);
		const base = S.depth.get('resid.var') || [...S.depth.values()][0];
		S.steps = base ? base.steps : [];
		S.lastDepthStep = S.steps.length ? S.steps[S.steps.length - 1] : -1;
		ui.slider.input.max = String(Math.max(0, S.steps.length - 1));
		if (S.followLast || S.stepIdx < 0 || S.stepIdx >= S.steps.length) S.stepIdx = S.steps.length - 1;
		ui.slider.input.value = String(Math.max(0, S.stepIdx));
		ui.slider.input.disabled = S.steps.length < 2;
		ui.slider.show();
		note(ui.varBox, failed ? errText(failed) : (S.steps.length ? '' : 'no depth profiles recorded yet'), !!failed);
		drawDepth();
	}

	function drawDepth() {
		drawVariance();
		const step = S.steps.length ? S.steps[Math.max(0, S.stepIdx)] : null;
		ui.profileStep.textContent = step === null ? '—' : String(step);
		const prof = (plot, box, names) => {
			const rows = names.map((n) => (step === null ? null : rowAt(S.depth.get(n), step)));
			const L = Math.max(0, ...rows.map((r) => (r ? r.values.length : 0)));
			if (!L) { note(box, 'no data yet'); plot.setData([[], ...names.map(() => [])]); return; }
			note(box, '');
			plot.setData([layersX(L), ...rows.map((r) => layersX(L).map((_, l) => (r && r.values[l] !== undefined ? r.values[l] : null)))]);
		};
		prof(ui.gradPlot, ui.gradBox, ['grad.block', 'grad.resid']);
		prof(ui.massPlot, ui.massBox, ['resid.maxabs', 'resid.top1_med']);
		prof(ui.kurtPlot, ui.kurtBox, ['resid.kurt']);
		prof(ui.anglePlot, ui.angleBox, ['angle']);
	}

	function drawVariance() {
		const m = S.depth.get('resid.var');
		if (!m || !m.steps.length) { ui.varPlot.setData([[]], []); return; }
		const n = m.steps.length, mode = ui.overlay.select.value;
		const idx = new Set(mode === 'none' ? [] : mode === 'fml' ? evenly(n, 3) : evenly(n, Number(mode)));
		idx.add(Math.max(0, Math.min(n - 1, S.stepIdx)));
		const chosen = [...idx].sort((a, b) => a - b);
		const L = m.layers || (m.values[0] || []).length;
		const series = chosen.map((i, k) => ({
			label: `step ${m.steps[i]}${i === S.stepIdx ? ' (chosen)' : ''}`,
			color: viridisCss(chosen.length > 1 ? k / (chosen.length - 1) : 1),
			width: i === S.stepIdx ? 2.5 : 1.5,
		}));
		ui.varPlot.setData([layersX(L), ...chosen.map((i) => layersX(L).map((_, l) => {
			const v = (m.values[i] || [])[l];
			return v === undefined ? null : v;
		}))], series);
	}

	async function loadHeatmap() {
		const name = ui.hmStat.select.value;
		if (!name) { ui.hm.setData({ name: '', steps: [], layers: 0, values: [] }); return; }
		try {
			const m = await depthMatrix(name, heatmapColumns(ui.hmBox));
			if (!alive() || ui.hmStat.select.value !== name) return;
			note(ui.hmBox, '');
			ui.hm.setData(m, { log: ui.hmLog.input.checked });
		} catch (e) {
			if (alive()) note(ui.hmBox, `${name}: ${errText(e)}`, true);
		}
	}

	async function loadAlpha() {
		if (!ui.alphaSites || !ui.alphaSites.length) return;
		const site = ui.alphaSite.select.value;
		const want = (n) => (S.depthNames.has(n) ? depthMatrix(n, Math.min(2000, bucketsFor(widthOf(ui.alphaBox)))).catch((e) => e) : null);
		const [a, s] = await Promise.all([want(`${site}.alpha`), want(`${site}.sat`)]);
		if (!alive() || ui.alphaSite.select.value !== site) return;
		const perLayer = (plot, box, m, what) => {
			if (!m || m instanceof Error) {
				note(box, m instanceof Error ? errText(m) : `no ${site}.${what} recorded`, m instanceof Error);
				plot.setData([[]], []);
				return;
			}
			note(box, '');
			const L = m.layers || 0;
			const series = layersX(L).map((l) => ({ label: `layer ${l}`, color: viridisCss(L > 1 ? (l - 1) / (L - 1) : 0.5) }));
			plot.setData([m.steps, ...layersX(L).map((_, l) => m.values.map((row) => (row[l] === undefined ? null : row[l])))], series);
		};
		perLayer(ui.alphaPlot, ui.alphaBox, a, 'alpha');
		perLayer(ui.satPlot, ui.satBox, s, 'sat');
	}

	async function loadSamples() {
		const site = ui.scSite.select.value;
		if (!site) { note(ui.scBox, 'no samples recorded yet'); markChart(ui.scBox, 0, 0); return; }
		const step = ui.scStep.select.value || 'latest';
		try {
			const d = await get(`/experiments/${enc(id)}/samples`, { site, step });
			if (!alive() || ui.scSite.select.value !== site) return;
			ui.scData = d;
			note(ui.scBox, '');
			ui.scInfo.textContent = `${d.site} at step ${d.step}: ${d.n} samples`;
			if (step === 'latest') {
				const opt = ui.scStep.select.querySelector('option[value="latest"]');
				if (opt) opt.textContent = `${d.step} (latest)`;
			}
			drawSamples();
		} catch (e) {
			if (alive()) note(ui.scBox, `${site} at step ${step}: ${errText(e)}`, true);
		}
	}

	function drawSamples() {
		const d = ui.scData;
		if (!d) return;
		const by = ui.scColour.value();
		ui.sc.setData({ x: d.x || [], y: d.y || [], c: by === 'channel' ? d.channel : d.token });
	}

	// ---------- divergence and live updates ----------

	function updateDivergence() {
		const ds = S.exp.diverged_step;
		const on = ds !== null && ds !== undefined && ds > 0;
		const text = on ? `diverged at step ${ds}` : '';
		for (const p of [ui.lossNote, ui.headDiv]) { if (p) { p.hidden = !on; p.textContent = text; } }
		const markers = on ? [{ x: ds, label: text, color: '#c00' }] : [];
		for (const p of [ui.lrPlot, ui.gnPlot]) if (p) p.setMarkers(markers);
		// LN removal: a marker at each step that removed norm sites, labelled with the count so far
		const rm = (S.removals || []).map((r) => ({ x: r.x, label: `LN −${r.n}`, color: '#2a7' }));
		if (ui.lossPlot) ui.lossPlot.setMarkers(rm.concat(markers));
	}

	function setStatus(status) {
		S.exp.status = status;
		ui.status.textContent = status;
		ui.status.className = `status status-${status}`;
	}

	function subscribe() {
		// live.js hands over the event's data object; a MessageEvent or a JSON string works too.
		const parse = (ev) => {
			let d = ev;
			if (d && typeof d === 'object' && d.id === undefined && d.data !== undefined) d = d.data;
			if (typeof d === 'string') { try { d = JSON.parse(d); } catch { d = null; } }
			return d && Number(d.id) === Number(id) ? d : null;
		};
		S.unsubs.push(onEvent('experiment.progress', (ev) => {
			const d = parse(ev);
			if (!d || !alive()) return;
			onProgress(d);
		}));
		S.unsubs.push(onEvent('experiment.finished', (ev) => {
			const d = parse(ev);
			if (!d || !alive()) return;
			onFinished(d);
		}));
		S.unsubs.push(onEvent('experiment.health', (ev) => {
			const d = parse(ev);
			if (!d || !alive()) return;
			S.exp.health = { status: d.health, step: d.step, reason: d.reason };
			updateHealth();
		}));
	}

	function onProgress(d) {
		const step = Number(d.step);
		if (!Number.isFinite(step)) return;
		if (step > (S.exp.step || 0)) { S.exp.step = step; ui.step.textContent = String(step); }
		if (S.exp.status !== 'running') setStatus('running');
		if (!S.scalars.has('loss') || !S.loss) { rebuildWhenData(); return; }
		appendLoss(step, d.loss, d.val_loss);
		S.progressN++;
		const every = (S.exp.spec && S.exp.spec.probe && S.exp.spec.probe.depth_every) || 0;
		const newerDepth = every > 0 && Math.floor(step / every) * every > S.lastDepthStep;
		const now = performance.now();
		if ((S.progressN >= REFRESH_EVERY || newerDepth) && !S.refreshing && now - S.lastRefresh >= REFRESH_MIN_MS) {
			S.progressN = 0;
			refreshDepth();
		}
	}

	// Appends one point in place (no refetch): uPlot gets the extended arrays.
	function appendLoss(step, loss, val) {
		const L = S.loss, V = S.val;
		const lastX = L.x.length ? L.x[L.x.length - 1] : -Infinity;
		if (step <= lastX) return;
		const y = loss === null || loss === undefined || !Number.isFinite(Number(loss)) ? null : Number(loss);
		L.x.push(step); L.y.push(y); L.lo.push(y); L.hi.push(y);
		const v = val === null || val === undefined || !Number.isFinite(Number(val)) ? null : Number(val);
		if (v !== null && (V.y.length === 0 || V.y[V.y.length - 1] !== v)) { V.x.push(step); V.y.push(v); }
		// Once appends have doubled the points the chart was fetched with, fetch it afresh
		// (downsampled to its width again).
		if (L.x.length > 2 * bucketsFor(widthOf(ui.lossBox)) && !S.refetchingLoss) {
			S.refetchingLoss = true;
			Promise.all([series('loss', ui.lossBox), S.scalars.has('val_loss') ? series('val_loss', ui.lossBox) : null])
				.then(([l, vv]) => { if (alive()) { S.loss = seriesCols(l); if (vv) S.val = seriesCols(vv); drawLoss(); } })
				.catch(() => {})
				.finally(() => { S.refetchingLoss = false; });
		}
		// The daemon sends progress with every depth row, which on a tiny model is many a
		// second: draw the appended points a few times a second, not per event.
		if (!S.drawTimer) {
			S.drawTimer = setTimeout(() => { S.drawTimer = 0; if (alive()) drawLoss(); }, LIVE_DRAW_MS);
		}
	}

	async function refreshDepth() {
		S.refreshing = true;
		S.lastRefresh = performance.now();
		try {
			const list = await get(`/experiments/${enc(id)}/metrics`);
			if (!alive()) return;
			const before = S.depthNames.size;
			S.list = list;
			S.depthNames = new Set(list.depth || []);
			S.scalars = new Set(list.scalars || []);
			if (S.depthNames.size !== before) { rebuild(); return; }
			await Promise.all([loadDepth(), loadHeatmap(), loadAlpha(), loadAccuracy()]);
		} catch { /* the next refresh tries again */ } finally {
			S.refreshing = false;
		}
	}

	// The run had nothing recorded when the view opened: build the sections once it has.
	function rebuildWhenData() {
		if (S.rebuilding || performance.now() - S.lastRefresh < 1000) return;
		S.rebuilding = true;
		S.lastRefresh = performance.now();
		get(`/experiments/${enc(id)}/metrics`).then((list) => {
			if (!alive()) return;
			if ((list.scalars || []).includes('loss')) { S.list = list; rebuild(); }
		}).catch(() => {}).finally(() => { S.rebuilding = false; });
	}

	function rebuild() {
		const step = S.exp.step;
		S.drawnOnce = true;   // the first draw was timed already
		build();
		ui.step.textContent = String(step);
	}

	async function onFinished(d) {
		if (d.status) setStatus(d.status);
		if (Number(d.step) > 0) { S.exp.step = Number(d.step); ui.step.textContent = String(d.step); }
		if (Number(d.diverged_step) > 0) S.exp.diverged_step = Number(d.diverged_step);
		if (d.error) { ui.error.hidden = false; ui.error.textContent = `error: ${d.error}`; }
		updateDivergence();
		for (const u of S.unsubs) { try { u(); } catch { /* gone */ } }
		S.unsubs = [];
		// The final picture: everything afresh once, in place (no rebuild unless new
		// statistics appeared, so the page does not jump).
		try {
			const [exp, list] = await Promise.all([get(`/experiments/${enc(id)}`), get(`/experiments/${enc(id)}/metrics`)]);
			if (!alive()) return;
			const grew = (list.depth || []).length !== S.depthNames.size || (list.scalars || []).length !== S.scalars.size;
			S.exp = exp;
			S.list = list;
			S.drawnOnce = true;
			if (grew) { build(); return; }
			ui.step.textContent = String(exp.step);
			updateDivergence();
			updateHealth();
			ui.scSamples = list.samples || [];
			fillSampleSteps();
			await Promise.all([loadScalars(), loadAccuracy(), loadDepth(), loadHeatmap(), loadAlpha(), loadSamples()]);
		} catch { /* keep what is drawn */ }
	}
}
