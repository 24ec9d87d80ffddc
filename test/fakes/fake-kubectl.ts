import { readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What a stateful fake kubectl holds: ConfigMaps' data and Deployments, by `<namespace>/<name>`. */
export interface KubectlState {
  configmaps: Record<string, { data?: Record<string, string> }>;
  deployments: Record<string, unknown>;
}

/**
 * Writes an executable `<dir>/kubectl` that keeps a small cluster in `<dir>/kubectl.state.json` and records each
 * call's argv in `<dir>/kubectl.calls.jsonl` (read with readCalls from make-fake.ts). It understands what the
 * configuration stores and services run: get/patch (merge, json) configmap, get/patch deployment, set env
 * (edit in place, append, `NAME-` removes), rollout restart/status (recorded, no effect) and scale (sets the
 * Deployment's spec.replicas and its available and ready replicas at once).
 */
export async function makeStatefulKubectl(dir: string, state: KubectlState): Promise<string> {
  const path = join(dir, 'kubectl');
  const stateFile = join(dir, 'kubectl.state.json');
  await writeFile(stateFile, JSON.stringify(state, null, 2));
  const script = `#!/usr/bin/env node
const stateFile = ${JSON.stringify(stateFile)};
const callsFile = ${JSON.stringify(join(dir, 'kubectl.calls.jsonl'))};
const argv = process.argv.slice(2);
import('node:fs').then((fs) => {
  fs.appendFileSync(callsFile, JSON.stringify(argv) + '\\n');
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  const save = () => fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
  const fail = (msg) => { process.stderr.write(msg + '\\n'); process.exitCode = 1; };
  const opt = (flag) => { const i = argv.indexOf(flag); return i < 0 ? undefined : argv[i + 1]; };
  const ns = opt('-n') ?? 'default';
  const [verb, kind] = argv;
  const ref = (k) => k.startsWith('deployment/') ? ['deployments', k.slice(11)] : k === 'configmap' ? ['configmaps', argv[2]] : [undefined, undefined];
  const [table, name] = ref(kind);
  const object = table && state[table][ns + '/' + name];
  if (verb === 'scale' && object) {
    const n = Number(argv.find((a) => a.startsWith('--replicas=')).slice(11));
    object.spec = { ...(object.spec ?? {}), replicas: n };
    object.status = { ...(object.status ?? {}), replicas: n, availableReplicas: n, readyReplicas: n };
    save();
    return process.stdout.write('deployment.apps/' + name + ' scaled\\n');
  }
  if (['rollout', 'scale'].includes(verb)) return;
  if (!object && verb !== 'set') return fail('Error from server (NotFound): ' + kind + ' ' + (name ?? '') + ' not found');
  if (verb === 'get') return process.stdout.write(JSON.stringify(object));
  if (verb === 'patch' && opt('--type') === 'merge') {
    const patch = JSON.parse(opt('-p'));
    object.data = object.data ?? {};
    for (const [k, v] of Object.entries(patch.data ?? {})) { if (v === null) delete object.data[k]; else object.data[k] = v; }
    save();
    return process.stdout.write('configmap/' + name + ' patched\\n');
  }
  if (verb === 'patch' && opt('--type') === 'json') {
    for (const op of JSON.parse(opt('-p'))) {
      const parts = op.path.split('/').slice(1);
      const last = parts.pop();
      let at = object;
      for (const p of parts) at = at[p];
      if (op.op === 'test' && JSON.stringify(at[last]) !== JSON.stringify(op.value)) return fail('The request is invalid: test failed');
      if (op.op === 'add' || op.op === 'replace') at[last] = op.value;
    }
    save();
    return process.stdout.write('deployment.apps/' + name + ' patched\\n');
  }
  if (verb === 'set' && kind === 'env') {
    const [, , target] = argv;
    const dep = state.deployments[ns + '/' + target.slice(11)];
    if (!dep) return fail('Error from server (NotFound): ' + target + ' not found');
    const containers = dep.spec.template.spec.containers;
    const c = opt('-c') ? containers.find((x) => x.name === opt('-c')) : containers[0];
    const skip = new Set(['-n', '-c']);
    const changes = argv.slice(3).filter((a, i, all) => !skip.has(a) && !skip.has(all[i - 1]));
    c.env = c.env ?? [];
    for (const change of changes) {
      if (change.endsWith('-') && !change.includes('=')) { c.env = c.env.filter((e) => e.name !== change.slice(0, -1)); continue; }
      const eq = change.indexOf('=');
      const [k, v] = [change.slice(0, eq), change.slice(eq + 1)];
      const found = c.env.find((e) => e.name === k);
      if (found) { delete found.valueFrom; found.value = v; } else c.env.push({ name: k, value: v });
    }
    save();
    return process.stdout.write('deployment.apps/' + target.slice(11) + ' env updated\\n');
  }
  fail('unexpected argv: ' + JSON.stringify(argv));
});
`;
  await writeFile(path, script);
  await chmod(path, 0o755);
  return path;
}

export function readKubectlState(dir: string): KubectlState {
  return JSON.parse(readFileSync(join(dir, 'kubectl.state.json'), 'utf8')) as KubectlState;
}
