// charts.js — shared pieces of the run and compare views: uPlot charts sized to their container
// (a ResizeObserver calls setSize), one colour per series that stays the same across charts,
// log-scale toggles, min/max or ±std bands and vertical markers drawn on the chart canvas, a
// canvas scatter plot (the norm's S-curve), labelled form controls, and the data-series /
// data-points attributes the browser test reads off every chart container.
// No build step: plain ES modules; uPlot comes from web/node_modules.

import uPlot from '/node_modules/uplot/dist/uPlot.esm.js';
import { NORM_TYPES, PLACEMENTS, ARCHES } from './util.js';

export { uPlot };
export const UPLOT_CSS = '/node_modules/uplot/dist/uPlot.min.css';

// Adds a stylesheet once, unless the page already links it (index.html does; this is a
// fallback so a chart never draws without uPlot's CSS).
export function ensureCss(href) {
	const have = [...document.querySelectorAll('link[rel="stylesheet"]')]
		.some((l) => l.getAttribute('href') === href || l.href === new URL(href, location.origin).href);
	if (have) return;
	const link = document.createElement('link');
	link.rel = 'stylesheet';
	link.href = href;
	document.head.append(link);
}

// ---------- DOM helpers ----------

// h('div', {class: 'x', text: 'hi', onclick: fn, 'data-chart': 'loss'}, child, ...)
export function h(tag, attrs, ...kids) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k === 'class') el.className = v;
		else if (k === 'text') el.textContent = v;
		else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
		else if (k in el && typeof v !== 'string') el[k] = v;
		else el.setAttribute(k, v === true ? '' : String(v));
	}
	for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
	return el;
}

let uidN = 0;
export const uid = (prefix) => `${prefix || 'nl'}-${++uidN}`;

// A <label> wrapping a checkbox: {wrap, input}.
export function checkbox(label, checked, onChange) {
	const input = h('input', { type: 'checkbox', id: uid('cb') });
	input.checked = !!checked;
	input.addEventListener('change', () => onChange(input.checked));
	return { wrap: h('label', { class: 'nl-ctl', for: input.id }, input, ' ', label), input };
}

// A labelled <select>: options as [value, text] pairs or plain strings. {wrap, select}.
export function selectBox(label, options, value, onChange) {
	const select = h('select', { id: uid('sel') });
	setOptions(select, options, value);
	if (onChange) select.addEventListener('change', () => onChange(select.value));
	return { wrap: h('span', { class: 'nl-ctl' }, h('label', { for: select.id, text: label }), ' ', select), select };
}

export function setOptions(select, options, value) {
	select.replaceChildren(...options.map((o) => {
		const [v, t] = Array.isArray(o) ? o : [o, o];
		return h('option', { value: String(v), text: String(t) });
	}));
	if (value !== undefined && value !== null) select.value = String(value);
}

// A labelled range input with an <output> showing its value: {wrap, input, output}.
export function slider(label, { min, max, step, value }, format, onInput) {
	const input = h('input', { type: 'range', id: uid('rng'), min: String(min), max: String(max), step: String(step) });
	input.value = String(value);
	const output = h('output', { for: input.id });
	const show = () => { output.textContent = format(Number(input.value)); };
	show();
	input.addEventListener('input', () => { show(); onInput(Number(input.value)); });
	return { wrap: h('span', { class: 'nl-ctl' }, h('label', { for: input.id, text: label }), ' ', input, ' ', output), input, output, show };
}

// A labelled radio group: {wrap, value()}.
export function radios(legend, name, options, value, onChange) {
	const fs = h('fieldset', { class: 'nl-ctl nl-radios' }, h('legend', { text: legend }));
	const inputs = options.map(([v, t]) => {
		const input = h('input', { type: 'radio', name, value: v, id: uid('rad') });
		input.checked = v === value;
		input.addEventListener('change', () => { if (input.checked) onChange(v); });
		fs.append(h('label', { for: input.id }, input, ' ', t));
		return input;
	});
	return { wrap: fs, value: () => (inputs.find((i) => i.checked) || {}).value };
}

// ---------- numbers ----------

export function fmt(v) {
	if (v === null || v === undefined || !Number.isFinite(v)) return '—';
	const a = Math.abs(v);
	if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
	return String(Number(v.toPrecision(4)));
}

function fmtTick(v) {
	if (v === null || v === undefined || !Number.isFinite(v)) return '';
	const a = Math.abs(v);
	if (a !== 0 && (a >= 1e4 || a < 1e-3)) return Number(v.toPrecision(3)).toExponential().replace('e+', 'e');
	return String(Number(v.toPrecision(6)));
}

// Log axes: uPlot places a tick at every 1..9 × 10^k. Label only the decades (and 2×, 5× over a
// few decades), and over very many decades draw only every few decades' grid lines and ticks.
const decadesOf = (splits) => {
	const vals = splits.filter((v) => v > 0);
	return vals.length ? Math.log10(Math.max(...vals) / Math.min(...vals)) : 0;
};
const mantissa = (v) => Math.round((v / 10 ** Math.floor(Math.log10(v) + 1e-9)) * 1e6) / 1e6;

function logFilter(u, splits) {
	const decades = decadesOf(splits);
	if (decades <= 6) return splits;
	const every = Math.ceil(decades / 6);
	return splits.map((v) => (v > 0 && mantissa(v) === 1 && Math.round(Math.log10(v)) % every === 0 ? v : null));
}

// `rows`: how many labels fit the axis's height.
const logValues = (rows) => (u, splits) => {
	const decades = decadesOf(splits);
	const keep = decades <= 1.2 ? null : decades <= Math.min(3, rows / 3) ? [1, 2, 5] : [1];
	const every = decades > rows ? Math.ceil(decades / Math.max(1, rows)) : 1;
	return splits.map((v) => {
		if (v === null || !(v > 0)) return '';
		if (keep && !keep.includes(mantissa(v))) return '';
		if (every > 1 && Math.round(Math.log10(v)) % every !== 0) return '';
		return fmtTick(v);
	});
};

// ---------- colours ----------

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
// Norm types, placements and arches keep one colour everywhere (their place in the engine's
// table), so a group's colour means the same thing on every chart.
function keyedColour(k) {
	for (const list of [NORM_TYPES, PLACEMENTS, ARCHES]) {
		const i = list.indexOf(k);
		if (i >= 0) return colour(i);
	}
	return null;
}

export function colour(i) {
	if (i < PALETTE.length) return PALETTE[i];
	return `hsl(${Math.round((i * 137.508) % 360)}, 62%, 42%)`;
}

export function colourFor(key, i) {
	const k = String(key).toLowerCase();
	return keyedColour(k) || colour(i);
}

// Early → late steps as a sequence (viridis), for overlays of one profile at several steps.
const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
	[31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
export function viridis(t) {
	const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
	const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
	return VIRIDIS[i].map((c, j) => Math.round(c + f * (VIRIDIS[i + 1][j] - c)));
}
export const viridisCss = (t) => `rgb(${viridis(t).join(',')})`;
export const VIRIDIS_GRADIENT = `linear-gradient(to right, ${VIRIDIS.map((c) => `rgb(${c.join(',')})`).join(', ')})`;

export function withAlpha(css, a) {
	if (css.startsWith('#') && css.length === 7) {
		const n = parseInt(css.slice(1), 16);
		return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
	}
	if (css.startsWith('hsl(')) return css.replace('hsl(', 'hsla(').replace(')', `, ${a})`);
	if (css.startsWith('rgb(')) return css.replace('rgb(', 'rgba(').replace(')', `, ${a})`);
	return css;
}

// ---------- data helpers ----------

// Exponential moving average over the finite values (debiased, as TensorBoard does); nulls stay.
export function ema(values, w) {
	if (!(w > 0)) return values.slice();
	let acc = 0, norm = 0;
	return values.map((v) => {
		if (v === null || v === undefined || !Number.isFinite(v)) return null;
		acc = w * acc + (1 - w) * v;
		norm = w * norm + (1 - w);
		return acc / norm;
	});
}

// Aligns several (x, y) columns onto the union of their x: [xs, ys1, ys2, ...] with nulls.
export function align(columns) {
	const set = new Set();
	for (const c of columns) for (const x of c.x) set.add(x);
	const xs = [...set].sort((a, b) => a - b);
	const at = new Map(xs.map((x, i) => [x, i]));
	const out = [xs];
	for (const c of columns) {
		const ys = new Array(xs.length).fill(null);
		c.x.forEach((x, i) => { ys[at.get(x)] = c.y[i] === undefined ? null : c.y[i]; });
		out.push(ys);
	}
	return out;
}

export const countPoints = (ys) => (ys ? ys.reduce((n, v) => n + (v !== null && v !== undefined && Number.isFinite(v) ? 1 : 0), 0) : 0);

// The attributes the browser test reads: y series drawn, and points in the first of them.
export function markChart(el, nSeries, nPoints) {
	el.setAttribute('data-series', String(nSeries));
	el.setAttribute('data-points', String(nPoints));
}

// A chart's container: a <div data-chart=name role=figure aria-label=...> (a figure, not an img:
// its legend and readouts stay readable).
export function chartBox(name, label, cls) {
	return h('div', { class: `nl-chart${cls ? ` ${cls}` : ''}`, 'data-chart': name, role: 'figure', 'aria-label': label });
}

// The pixel width a chart in `el` will draw at (its plot area is a bit narrower: never more
// points are asked for than that).
export function widthOf(el, fallback) {
	const w = el ? Math.floor(el.getBoundingClientRect().width) : 0;
	return w > 0 ? w : (fallback || 600);
}

// ---------- uPlot wrapper ----------

// new Plot(container, {
//   label, xLabel, yLabel, y2Label, height, logY, xInt (integer x ticks, e.g. layers),
//   xPad (half a unit of padding each side), points (show points),
//   series: [{label, color, width, dash, scale: 'y'|'y2', spanGaps, points}],
//   markers: [{x, label, color}], bands: [{series: i, lo: [...], hi: [...]}]  (i: 1-based)
// })
// plot.setData([xs, ys...]) draws (or redraws) and sets data-series / data-points on the container.
// Calls onChange(width) when the container's width moves 2 px or more away from lastWidth(), at
// most once per frame. Deferred to the next frame because resizing inside the observer's
// callback would re-trigger it ("ResizeObserver loop" errors). Returns the function that stops it.
export function watchWidth(container, lastWidth, onChange) {
	let raf = 0;
	const ro = new ResizeObserver(() => {
		if (raf) return;
		raf = requestAnimationFrame(() => {
			raf = 0;
			const w = widthOf(container, 0);
			if (w > 0 && Math.abs(w - lastWidth()) >= 2) onChange(w);
		});
	});
	ro.observe(container);
	return () => { ro.disconnect(); if (raf) cancelAnimationFrame(raf); };
}

export class Plot {
	constructor(container, opts) {
		this.el = container;
		this.o = { height: 240, ...opts };
		this.data = null;
		this.u = null;
		this.logY = !!this.o.logY;
		this.markers = this.o.markers || [];
		this.bands = this.o.bands || [];
		this.onDraw = null;
		this.width = 0;
		this.host = h('div', { class: 'nl-plot' });
		container.append(this.host);
		this.unwatch = watchWidth(container, () => this.width, (w) => {
			if (!this.u) return;
			this.width = w;
			this.u.setSize({ width: w, height: this.o.height });
		});
	}

	seriesCount() { return this.data ? this.data.length - 1 : 0; }

	// `series` (optional) replaces the series options, for a chart whose set of lines changes.
	setData(data, series) {
		this.data = data;
		if (series) this.o.series = series;
		if (series || !this.u || this.u.series.length !== data.length) this.build();
		else this.u.setData(this.view(data), true);
		markChart(this.el, data.length - 1, countPoints(data[1]));
	}

	setLogY(on) {
		this.logY = !!on;
		if (this.data) this.build();
	}

	setMarkers(markers) {
		this.markers = markers || [];
		// the marker steps on the container, for tests and for anyone reading the page's DOM
		this.el.dataset.markers = this.markers.map((m) => m.x).join(',');
		if (this.u) this.u.redraw(true, false);
	}

	setBands(bands) { this.bands = bands || []; }

	// What is drawn: on a log scale, values <= 0 cannot be placed and become gaps.
	view(data) {
		if (!this.logY) return data;
		return data.map((ys, i) => (i === 0 ? ys : ys.map((v) => (v !== null && v > 0 ? v : null))));
	}

	build() {
		if (this.u) { this.u.destroy(); this.u = null; }
		this.host.replaceChildren();
		const o = this.o;
		const self = this;
		const logY = this.logY;
		const yScale = logY ? { distr: 3, log: 10 } : {};
		const scales = {
			x: {
				time: false,
				range: (u, min, max) => {
					let lo = min, hi = max;
					for (const m of self.markers) if (Number.isFinite(m.x)) { lo = lo === null ? m.x : Math.min(lo, m.x); hi = hi === null ? m.x : Math.max(hi, m.x); }
					if (lo === null || hi === null || !Number.isFinite(lo)) return [0, 1];
					if (o.xPad) return [lo - 0.5, hi + 0.5];
					if (lo === hi) return [lo - 1, hi + 1];
					return [lo, hi];
				},
			},
			y: { ...yScale },
		};
		if (o.y2Label) scales.y2 = { ...yScale };
		const axisCommon = { stroke: '#444', grid: { stroke: '#e6e6e6', width: 1 }, ticks: { stroke: '#ccc', width: 1 } };
		const axes = [
			{ ...axisCommon, label: o.xLabel || 'step', values: (u, splits) => splits.map((v) => (o.xInt && !Number.isInteger(v) ? '' : fmtTick(v))) },
			{ ...axisCommon, label: o.yLabel || '', size: 64, values: (u, splits) => splits.map(fmtTick) },
		];
		if (o.xInt) axes[0].incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500];
		if (o.y2Label) axes.push({ ...axisCommon, scale: 'y2', side: 1, grid: { show: false }, label: o.y2Label, size: 64, values: (u, splits) => splits.map(fmtTick) });
		if (logY) axes.forEach((a, i) => {
			if (i === 0) return;
			a.values = logValues(Math.max(2, Math.floor((o.height - 60) / 24)));
			a.grid = { ...a.grid, filter: logFilter };
			a.ticks = { ...a.ticks, filter: logFilter };
		});
		const series = [{ label: o.xLabel || 'step', value: (u, v) => fmt(v) }].concat((o.series || []).map((s, i) => ({
			label: s.label,
			scale: s.scale || 'y',
			stroke: s.color || colour(i),
			width: s.width || 1.5,
			dash: s.dash,
			spanGaps: s.spanGaps !== undefined ? s.spanGaps : true,
			points: s.points || (o.points ? { show: true, size: 6 } : { show: false }),
			value: (u, v) => fmt(v),
		})));
		const width = widthOf(this.el, 600);
		this.width = width;
		const opts = {
			width, height: o.height, series, axes, scales,
			legend: { show: o.legend !== false },
			cursor: { drag: { x: true, y: false }, points: { size: 6 } },
			hooks: {
				drawAxes: [(u) => self.drawBands(u)],
				draw: [(u) => { self.drawMarkers(u); if (self.onDraw) self.onDraw(u); }],
			},
		};
		this.u = new uPlot(opts, this.view(this.data), this.host);
	}

	drawBands(u) {
		if (!this.bands.length || !this.data) return;
		const ctx = u.ctx, { left, top, width, height } = u.bbox, xs = this.data[0];
		ctx.save();
		ctx.beginPath();
		ctx.rect(left, top, width, height);
		ctx.clip();
		for (const b of this.bands) {
			const s = u.series[b.series];
			if (!s || !s.show) continue;
			const scale = s.scale || 'y';
			const so = (this.o.series || [])[b.series - 1] || {};
			ctx.fillStyle = b.color || withAlpha(so.color || colour(b.series - 1), 0.18);
			// one polygon per run of points where both edges can be placed
			let run = [];
			const flush = () => {
				if (run.length >= 1) {
					ctx.beginPath();
					const pad = run.length === 1 ? 1.5 * uPlot.pxRatio : 0;
					run.forEach(([x, lo], k) => (k ? ctx.lineTo(x + pad, lo) : ctx.moveTo(x - pad, lo)));
					for (let k = run.length - 1; k >= 0; k--) ctx.lineTo(run[k][0] + (k === run.length - 1 ? pad : 0), run[k][2]);
					if (pad) ctx.lineTo(run[0][0] - pad, run[0][2]);
					ctx.closePath();
					ctx.fill();
				}
				run = [];
			};
			for (let i = 0; i < xs.length; i++) {
				const lo = b.lo[i], hi = b.hi[i];
				const ok = lo !== null && hi !== null && Number.isFinite(lo) && Number.isFinite(hi) && (!this.logY || (lo > 0 && hi > 0));
				if (!ok) { if (!b.spanGaps) flush(); continue; }
				run.push([u.valToPos(xs[i], 'x', true), u.valToPos(lo, scale, true), u.valToPos(hi, scale, true)]);
			}
			flush();
		}
		ctx.restore();
	}

	drawMarkers(u) {
		this.el.dataset.markersDrawn = '0';
		if (!this.markers.length) return;
		const ctx = u.ctx, { left, top, width, height } = u.bbox, r = uPlot.pxRatio;
		ctx.save();
		let row = 0;   // labels of neighbouring markers go on successive rows
		let drawn = 0;
		for (const m of this.markers) {
			if (!Number.isFinite(m.x)) continue;
			const x = Math.round(u.valToPos(m.x, 'x', true));
			if (x < left - 1 || x > left + width + 1) continue;
			this.el.dataset.markersDrawn = String(++drawn);   // inside the plot area, on the canvas
			ctx.strokeStyle = m.color || '#c00';
			ctx.lineWidth = 2 * r;
			ctx.setLineDash([6 * r, 4 * r]);
			ctx.beginPath();
			ctx.moveTo(x, top);
			ctx.lineTo(x, top + height);
			ctx.stroke();
			if (m.label) {
				ctx.setLineDash([]);
				ctx.font = `bold ${12 * r}px system-ui, sans-serif`;
				ctx.textAlign = 'left';          // uPlot leaves whatever its axes used
				ctx.textBaseline = 'alphabetic';
				const tw = ctx.measureText(m.label).width;
				const tx = Math.max(left + 2 * r, x + 6 * r + tw > left + width ? x - 6 * r - tw : x + 6 * r);
				const ty = top + 16 * r * (1 + (row++ % 5));
				ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
				ctx.fillRect(tx - 2 * r, ty - 12 * r, tw + 4 * r, 16 * r);
				ctx.fillStyle = m.color || '#c00';
				ctx.fillText(m.label, tx, ty);
			}
		}
		ctx.restore();
	}

	destroy() {
		this.unwatch();
		if (this.u) this.u.destroy();
		this.u = null;
	}
}

// ---------- canvas scatter (the S-curve) ----------

function niceTicks(lo, hi, n) {
	if (!(hi > lo)) return [lo];
	const raw = (hi - lo) / Math.max(1, n);
	const mag = 10 ** Math.floor(Math.log10(raw));
	const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
	const out = [];
	for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
	return out;
}

// Hue for an integer id (token or channel): golden-ratio spacing keeps neighbours apart.
const hueOf = (k) => Math.round((((k * 0.6180339887) % 1) + 1) % 1 * 360);

// new Scatter(container, {label, xLabel, yLabel, height}); setData({x, y, c (ids or null)}).
export class Scatter {
	constructor(container, opts) {
		this.el = container;
		this.o = { height: 340, ...opts };
		this.canvas = h('canvas', { class: 'nl-canvas', role: 'img', 'aria-label': opts.label || 'scatter plot' });
		container.append(this.canvas);
		this.data = null;
		this.width = 0;
		this.unwatch = watchWidth(container, () => this.width, () => { if (this.data) this.draw(); });
	}

	setData(d) {
		this.data = d;
		this.draw();
		markChart(this.el, 1, countPoints(d.x));
	}

	draw() {
		const d = this.data;
		const W = widthOf(this.el, 600), H = this.o.height, r = window.devicePixelRatio || 1;
		this.width = W;
		const cv = this.canvas;
		cv.width = Math.round(W * r);
		cv.height = Math.round(H * r);
		cv.style.width = `${W}px`;
		cv.style.height = `${H}px`;
		const ctx = cv.getContext('2d');
		ctx.setTransform(r, 0, 0, r, 0, 0);
		ctx.clearRect(0, 0, W, H);
		const m = { l: 64, r: 12, t: 10, b: 44 };
		const pw = W - m.l - m.r, ph = H - m.t - m.b;
		let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
		const n = d.x.length;
		for (let i = 0; i < n; i++) {
			const x = d.x[i], y = d.y[i];
			if (x === null || y === null || !Number.isFinite(x) || !Number.isFinite(y)) continue;
			if (x < xlo) xlo = x; if (x > xhi) xhi = x;
			if (y < ylo) ylo = y; if (y > yhi) yhi = y;
		}
		if (!(xhi >= xlo)) { xlo = -1; xhi = 1; ylo = -1; yhi = 1; }
		if (xhi === xlo) { xlo -= 1; xhi += 1; }
		if (yhi === ylo) { ylo -= 1; yhi += 1; }
		const xp = (xhi - xlo) * 0.03, yp = (yhi - ylo) * 0.05;
		xlo -= xp; xhi += xp; ylo -= yp; yhi += yp;
		const X = (v) => m.l + ((v - xlo) / (xhi - xlo)) * pw;
		const Y = (v) => m.t + ph - ((v - ylo) / (yhi - ylo)) * ph;
		// grid and axes
		ctx.font = '12px system-ui, sans-serif';
		ctx.strokeStyle = '#e6e6e6';
		ctx.fillStyle = '#444';
		ctx.lineWidth = 1;
		ctx.textAlign = 'center';
		ctx.textBaseline = 'top';
		for (const t of niceTicks(xlo, xhi, Math.max(2, Math.floor(pw / 90)))) {
			const x = Math.round(X(t)) + 0.5;
			ctx.beginPath(); ctx.moveTo(x, m.t); ctx.lineTo(x, m.t + ph); ctx.stroke();
			ctx.fillText(fmtTick(t), x, m.t + ph + 4);
		}
		ctx.textAlign = 'right';
		ctx.textBaseline = 'middle';
		for (const t of niceTicks(ylo, yhi, Math.max(2, Math.floor(ph / 50)))) {
			const y = Math.round(Y(t)) + 0.5;
			ctx.beginPath(); ctx.moveTo(m.l, y); ctx.lineTo(m.l + pw, y); ctx.stroke();
			ctx.fillText(fmtTick(t), m.l - 6, y);
		}
		ctx.strokeStyle = '#888';
		ctx.strokeRect(m.l + 0.5, m.t + 0.5, pw, ph);
		ctx.textAlign = 'center';
		ctx.textBaseline = 'alphabetic';
		ctx.fillText(this.o.xLabel || 'x', m.l + pw / 2, H - 6);
		ctx.save();
		ctx.translate(14, m.t + ph / 2);
		ctx.rotate(-Math.PI / 2);
		ctx.textBaseline = 'middle';
		ctx.fillText(this.o.yLabel || 'y', 0, 0);
		ctx.restore();
		// points
		ctx.save();
		ctx.beginPath();
		ctx.rect(m.l, m.t, pw, ph);
		ctx.clip();
		ctx.globalAlpha = 0.55;
		const c = d.c;
		for (let i = 0; i < n; i++) {
			const x = d.x[i], y = d.y[i];
			if (x === null || y === null || !Number.isFinite(x) || !Number.isFinite(y)) continue;
			ctx.fillStyle = c ? `hsl(${hueOf(c[i] || 0)}, 70%, 45%)` : '#1f77b4';
			ctx.fillRect(X(x) - 1.5, Y(y) - 1.5, 3, 3);
		}
		ctx.restore();
	}

	destroy() {
		this.unwatch();
	}
}
