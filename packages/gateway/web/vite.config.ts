import react from '@vitejs/plugin-react';
import { defaultClientConditions, defineConfig } from 'vite';

// The demo app the gateway serves at `/` in --demo mode (from dist/). The authsocket packages are
// bundled from their TypeScript sources (the `source` export condition), so no prior tsc build is
// needed. `npm run dev -w packages/gateway/web` serves it with hot reload against a gateway
// running on :8080 (`npm start`).
const gateway = 'http://localhost:8080';

export default defineConfig({
  plugins: [react()],
  resolve: { conditions: ['source', ...defaultClientConditions] },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: {
      '/auth': gateway,
      '/demo': gateway,
      '/api': gateway,
      '/ws': { target: gateway, ws: true },
    },
  },
});
