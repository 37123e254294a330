export { bundlePath } from '../shared/bundlePath.ts';
