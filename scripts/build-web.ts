import { buildWeb, WEB_DIST } from '../src/web/build.ts';

await buildWeb();
console.log(`web page built in ${WEB_DIST}`);
