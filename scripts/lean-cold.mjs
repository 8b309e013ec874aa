// The lean start-up paths' cold modules: loaded only on request (for the launch path: docker://
// conversion, the extraction fallback; for both: squashfs codecs other than gzip), they pull in
// the squashfs writer, codec libraries and native addons, so the lean bundles leave them out:
// scripts/bundle-launch.mjs (the checkout's NAME.bundle.js) and scripts/release-bundle.mjs
// (the release's dist/launch.js) both take this list. Paths relative to dist/src.
export const OTHER_CODECS = ['zstd', 'xz', 'lz4', 'lzo', 'pool'].map((c) => `formats/squashfs/codecs/${c}.js`);
export const COLD = {
  'fast-launch': ['core/pull.js', 'core/extract-cache.js', ...OTHER_CODECS],
  'fast-pull': OTHER_CODECS,
};
