// Shared by the browser tests: a corpus of their own and normlabd on a free loopback port.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

// ~250 KB of word salad in dir/corpus.txt (the daemon's data root); seed picks the sequence.
export function writeCorpus(dir, seed) {
	const words = 'the norm of layer and variance grows with depth in pre post tanh residual stream a'.split(' ');
	let r = seed, text = '';
	for (let i = 0; i < 40000; i++) { r = (r * 1103515245 + 12345) >>> 0; text += words[(r >>> 16) % 16] + ((r >>> 8) % 11 === 0 ? '\n' : ' '); }
	writeFileSync(join(dir, 'corpus.txt'), text);
}

// Starts bin/normlabd with its database, runs and tokens in tmp and the repo's web/, plus extra
// flags; retries other ports. Resolves to { daemon, port } once /api/v1/health answers.
export async function launchDaemon(bin, tmp, root, extra = []) {
	for (let attempt = 0; attempt < 8; attempt++) {
		const port = 20000 + Math.floor(Math.random() * 40000);
		const daemon = spawn(join(bin, 'normlabd'), ['--listen', `127.0.0.1:${port}`, '--db', join(tmp, 'db/n.db'),
			'--runs', join(tmp, 'runs'), '--tokens', join(tmp, 'tokens'), '--data-dir', tmp,
			'--web_dir', join(root, 'web'), '--workers', '2', '--thread_budget', '2', '--log-level', 'warn',
			...extra], { stdio: ['ignore', 'ignore', 'inherit'] });
		for (let i = 0; i < 100; i++) {
			try { if ((await fetch(`http://127.0.0.1:${port}/api/v1/health`)).ok) return { daemon, port }; } catch { /* not yet */ }
			if (daemon.exitCode !== null) break;
			await new Promise((r) => setTimeout(r, 50));
		}
		daemon.kill('SIGKILL');
	}
	throw new Error('normlabd did not start');
}
