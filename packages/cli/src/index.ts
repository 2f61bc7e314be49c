export { program } from './bin';
