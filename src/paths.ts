/**
 * Where the files that are not compiled live: package.json, the bundle schema
 * (training/bundle-format/), the web page (src/ui/), openapi/. They are resolved from the package
 * root, the folder holding package.json, which is one level above this module in every layout:
 * src/paths.ts under tsx, dist/paths.js after `npm run build` (tsconfig.build.json), /app/dist/paths.js
 * in the image. A path relative to each caller's own file would differ between src/ and dist/.
 */
import { fileURLToPath } from 'node:url'

const PACKAGE_ROOT = new URL('../', import.meta.url)

/** file: URL of a file or folder (end folders with '/') below the package root */
export function packageUrl (relative: string): URL {
  return new URL(relative, PACKAGE_ROOT)
}

/** file-system path of a file or folder below the package root */
export function packagePath (relative: string): string {
  return fileURLToPath(packageUrl(relative))
}
