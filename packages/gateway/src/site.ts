import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type RequestHandler, Router } from 'express';
import { infoPage } from './info-page.js';

/** Where the demo web app's build lands (`packages/gateway/web/dist`), from `src/` or `dist/` alike. */
export const DEMO_APP_DIR = fileURLToPath(new URL('../web/dist/', import.meta.url));

export interface SiteOptions {
  /** An explicit static directory (`--static-dir`). */
  readonly staticDir: string | undefined;
  readonly demo: boolean;
  readonly wsPath: string;
  readonly apiEnabled: boolean;
  /** Where to look for the built demo app. Default `DEMO_APP_DIR`. */
  readonly demoAppDir?: string;
}

/** The directory served at `/`, if any: `--static-dir`, else the built demo app in demo mode. */
export function siteDirectory({
  staticDir,
  demo,
  demoAppDir = DEMO_APP_DIR,
}: Pick<SiteOptions, 'staticDir' | 'demo' | 'demoAppDir'>): string | undefined {
  if (staticDir !== undefined) return staticDir;
  return demo && existsSync(join(demoAppDir, 'index.html')) ? demoAppDir : undefined;
}

/** Serves the static directory at `/` when there is one, else a page that lists the endpoints. */
export function createSite(options: SiteOptions): Router {
  const site = Router();
  const directory = siteDirectory(options);
  if (directory !== undefined) {
    site.use(express.static(directory, { index: 'index.html', redirect: false }));
    return site;
  }
  const html = infoPage(options);
  const page: RequestHandler = (_req, res) => {
    res
      .set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'")
      .set('X-Content-Type-Options', 'nosniff')
      .type('html')
      .send(html);
  };
  site.get('/', page);
  return site;
}
