// esbuild bundles CSS imported from the page's code.
declare module '*.css';
