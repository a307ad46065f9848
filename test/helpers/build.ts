// The production build, as the tests and the benchmarks run it (scripts/service-process.ts).
export { ensureBuild } from '../../scripts/service-process';
