// Checks Grafana dashboards against Grafana's own dashboard model.
//
//   node tools/grafana/check.mjs [DASHBOARD.json ...]   (default: docs/grafana/*.json)
//
// Each file must be JSON; its text is then type-checked with TypeScript as an
// object literal of `CheckedDashboard` (types.ts: @grafana/schema's Dashboard with
// the options of the panel plugins used), so that a missing required field, a wrong
// type, a value outside an enumeration or a misspelt key is an error, named by
// file, line and column. Then what Grafana's CUE schema says and types cannot:
// panel ids unique, every panel within the 24-column grid, queries' refIds unique
// per panel, and every `$variable` a query uses defined. Exit code 1 on any error.
//
// The PromQL of the queries is checked elsewhere: crates/server/tests/metrics.rs
// parses every expression with `promtool check rules` and checks each metric
// name against a scrape of a running server.

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

// Variables Grafana itself defines.
const BUILTIN_VARIABLES = new Set([
  '__rate_interval',
  '__interval',
  '__interval_ms',
  '__range',
  '__range_s',
  '__range_ms',
  '__dashboard',
  '__from',
  '__to',
]);

function dashboards() {
  const args = process.argv.slice(2);
  if (args.length > 0) return args.map((f) => resolve(f));
  const dir = join(root, 'docs', 'grafana');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
}

const errors = [];
const files = dashboards();
if (files.length === 0) {
  console.error('no dashboards to check');
  process.exit(1);
}

// 1. JSON, and the rules that are not types.
const parsed = [];
for (const file of files) {
  const name = relative(process.cwd(), file);
  const text = readFileSync(file, 'utf8');
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    errors.push(`${name}: not JSON: ${e.message}`);
    continue;
  }
  parsed.push({ file, name, text });
  const defined = new Set((doc.templating?.list ?? []).map((v) => v.name));
  const ids = new Map();
  const panels = [];
  for (const panel of doc.panels ?? []) {
    panels.push(panel);
    if (Array.isArray(panel.panels)) panels.push(...panel.panels);
  }
  for (const panel of panels) {
    const where = `${name}: panel ${JSON.stringify(panel.title ?? panel.id)}`;
    if (ids.has(panel.id)) errors.push(`${where}: id ${panel.id} is also panel ${JSON.stringify(ids.get(panel.id))}'s`);
    ids.set(panel.id, panel.title);
    const g = panel.gridPos;
    if (g && (g.w < 1 || g.w > 24 || g.x < 0 || g.x + g.w > 24 || g.h < 1 || g.y < 0)) {
      errors.push(`${where}: gridPos ${JSON.stringify(g)} is outside the 24-column grid`);
    }
    const refIds = new Set();
    for (const target of panel.targets ?? []) {
      if (refIds.has(target.refId)) errors.push(`${where}: refId ${target.refId} used twice`);
      refIds.add(target.refId);
      const used = [
        ...JSON.stringify([target.expr, target.datasource, target.legendFormat]).matchAll(/\$\{?(\w+)/g),
      ].map((m) => m[1]);
      for (const variable of used) {
        if (!defined.has(variable) && !BUILTIN_VARIABLES.has(variable)) {
          errors.push(`${where}: query ${target.refId} uses $${variable}, which the dashboard does not define`);
        }
      }
    }
  }
}

// 2. Grafana's model, by TypeScript.
const PRELUDE = "import type { CheckedDashboard } from './types';\nexport const dashboard: CheckedDashboard = ";
const virtual = new Map(parsed.map((p, i) => [join(here, `__dashboard_${i}.ts`), p]));
const options = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  skipLibCheck: true,
  types: [],
};
const host = ts.createCompilerHost(options);
const { getSourceFile, fileExists, readFile } = host;
host.fileExists = (f) => virtual.has(f) || fileExists.call(host, f);
host.readFile = (f) => (virtual.has(f) ? PRELUDE + virtual.get(f).text : readFile.call(host, f));
host.getSourceFile = (f, language, ...rest) =>
  virtual.has(f)
    ? ts.createSourceFile(f, PRELUDE + virtual.get(f).text, language)
    : getSourceFile.call(host, f, language, ...rest);
const program = ts.createProgram([...virtual.keys()], options, host);
const preludeLines = PRELUDE.split('\n').length - 1;
const preludeColumns = PRELUDE.length - PRELUDE.lastIndexOf('\n') - 1;
for (const d of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
  if (!d.file) {
    errors.push(`typescript: ${message}`);
    continue;
  }
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
  const p = virtual.get(d.file.fileName);
  if (p) {
    // Back to the dashboard's own lines and columns (1-based).
    const jsonLine = line - preludeLines + 1;
    const jsonColumn = (line === preludeLines ? character - preludeColumns : character) + 1;
    errors.push(`${p.name}:${jsonLine}:${jsonColumn}: ${message}`);
  } else {
    errors.push(`${relative(process.cwd(), d.file.fileName)}:${line + 1}:${character + 1}: ${message}`);
  }
}

if (errors.length > 0) {
  for (const e of errors) console.error(e);
  console.error(`${errors.length} error(s) in ${files.length} dashboard(s)`);
  process.exit(1);
}
console.log(`${files.length} dashboard(s) match Grafana's dashboard model (@grafana/schema)`);
