import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = path.dirname(fileURLToPath(import.meta.url));

/**
 * The browser side of Sluice, built into static files under web/dist that the service serves
 * itself (src/server/web.ts): the jobs page (index.html) and GraphiQL (graphiql.html, served at
 * GET /graphql). Nothing is loaded from a CDN. `npm run web:dev` serves it with hot reload and
 * proxies the API to a running service (SLUICE_DEV_API, default http://127.0.0.1:4000).
 */
export default defineConfig({
  root,
  base: '/',
  // The jobs page imports the SDK from src/sdk; esbuild handles the TypeScript.
  esbuild: { jsx: 'automatic' },
  // Monaco's workers import chunks of their own, which only ES module workers allow.
  worker: { format: 'es' },
  build: {
    outDir: path.join(root, 'dist'),
    emptyOutDir: true,
    // Monaco (GraphiQL's editor) is large by nature; it loads only on /graphql.
    chunkSizeWarningLimit: 6000,
    reportCompressedSize: false,
    rollupOptions: {
      onwarn(warning, warn) {
        // React libraries mark files "use client" for server components; meaningless in a bundle.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
      input: {
        index: path.join(root, 'index.html'),
        graphiql: path.join(root, 'graphiql.html'),
      },
    },
  },
  server: {
    proxy: {
      '/graphql': { target: process.env['SLUICE_DEV_API'] ?? 'http://127.0.0.1:4000', ws: true, changeOrigin: true },
      '/files': { target: process.env['SLUICE_DEV_API'] ?? 'http://127.0.0.1:4000', changeOrigin: true },
    },
  },
});
